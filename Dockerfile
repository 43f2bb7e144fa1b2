# syntax=docker/dockerfile:1
#
# lindi-service: GET /lindi?url=… on port 8080, index cache in the volume /var/cache/lindi.
#
#   docker build -t lindi-service .
#   docker run -p 8080:8080 -v lindi-cache:/var/cache/lindi lindi-service
#
# The app runs its TypeScript sources with tsx (`node --import tsx`, as `npm start` does);
# tsx is therefore a production dependency. Configuration: environment variables, see
# README.md ("Service") and src/config.ts.

ARG NODE_VERSION=20.20

# ---- stage 1: production dependencies only ------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- stage 2: runtime -----------------------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PORT=8080 \
    HOST=0.0.0.0 \
    LINDI_CACHE_DIR=/var/cache/lindi
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY routes ./routes
COPY openapi ./openapi
# the cache volume belongs to the unprivileged user the service runs as
RUN mkdir -p /var/cache/lindi && chown node:node /var/cache/lindi
USER node
EXPOSE 8080
VOLUME ["/var/cache/lindi"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM: stop accepting, answer waiting requests, stop builds, flush the cache (src/main.ts)
STOPSIGNAL SIGTERM
# the same command as npm start (test/docker.test.ts): a larger initial V8 heap, else V8 starts a full
# collection every two or three cold /slice reads (its old-generation room is below the young
# generation's size while the heap is small; BENCHMARKS.md)
CMD ["node", "--initial-heap-size=128", "--import", "tsx", "src/main.ts"]
