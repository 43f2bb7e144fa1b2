/**
 * `npm start`: reads the configuration from the environment (src/config.ts),
 * builds the app (src/server.ts) with the real index builder and listens.
 * SIGTERM/SIGINT close it gracefully: no new connections, requests waiting
 * for builds are answered (503 + Retry-After), running builds stop, pending
 * cache writes finish, the builder's workers end. A second signal, or 25 s
 * without finishing, exits at once.
 */
import { ConfigError, loadConfig } from "./config.ts";
import { buildServer } from "./server.ts";

const SHUTDOWN_DEADLINE_MS = 25_000;

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      process.exit(2);
    }
    throw e;
  }
  const app = await buildServer(config);

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      app.log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    app.log.info({ signal }, "shutting down");
    const deadline = setTimeout(() => {
      app.log.error("shutdown took too long: exiting");
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS);
    deadline.unref();
    app.close().then(
      () => {
        app.log.info("stopped");
        process.exit(0);
      },
      (err: unknown) => {
        app.log.error({ err }, "error while shutting down");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);

  await app.listen({ port: config.port, host: config.host });
  app.log.info(
    {
      cacheDir: config.cacheDir,
      allowedHosts: config.allowedHosts,
      allowPrivateNetworks: config.allowPrivateNetworks,
      poolSize: config.poolSize,
    },
    "lindi-service ready",
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
