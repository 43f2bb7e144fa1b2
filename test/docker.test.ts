/**
 * Dockerfile and docker-compose.yml, checked statically (no Docker engine
 * here): they parse, and what they say agrees with the code — the command
 * runs src/main.ts with a runtime the production install contains, the
 * environment names are the ones src/config.ts reads, the HEALTHCHECK path is
 * a route, EXPOSE and the published port match the default PORT, the cache
 * lives in a volume owned by a non-root user.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parse } from "yaml";
import { defaultConfig, ENVIRONMENT, loadConfig } from "../src/config.ts";
import { repoRoot } from "./support/corpus.ts";

interface Instruction {
  op: string;
  args: string;
  line: number;
}

/** Instructions of a Dockerfile (continuations joined, comments dropped). */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trim();
    const start = i + 1;
    if (line === "" || line.startsWith("#")) continue;
    while (line.endsWith("\\") && i + 1 < lines.length) {
      line = line.slice(0, -1).trimEnd() + " ";
      let next = lines[++i]!.trim();
      while (next.startsWith("#") && i + 1 < lines.length) next = lines[++i]!.trim();
      line += next;
    }
    const m = /^(\w+)\s+([\s\S]*)$/.exec(line);
    assert.ok(m, `Dockerfile line ${start}: ${line}`);
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start });
  }
  return out;
}

function execForm(args: string): string[] {
  const v = JSON.parse(args) as unknown;
  assert.ok(Array.isArray(v) && v.every((x) => typeof x === "string"), `exec form expected: ${args}`);
  return v as string[];
}

const dockerfile = parseDockerfile(readFileSync(path.join(repoRoot, "Dockerfile"), "utf8"));
const pkg = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  scripts?: Record<string, string>;
};
const openapi = parse(readFileSync(path.join(repoRoot, "openapi/openapi.yaml"), "utf8")) as { paths: Record<string, Record<string, unknown>> };

/** Instructions of the last stage (the image that runs). */
function finalStage(): Instruction[] {
  const froms = dockerfile.map((d, i) => (d.op === "FROM" ? i : -1)).filter((i) => i >= 0);
  return dockerfile.slice(froms[froms.length - 1]);
}

function envOf(stage: Instruction[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const d of stage.filter((x) => x.op === "ENV")) {
    for (const m of d.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1]!] = m[2]!.replace(/^"|"$/g, "");
  }
  return env;
}

test("Dockerfile: multi-stage, production install, non-root, volume, port, health check", () => {
  const froms = dockerfile.filter((d) => d.op === "FROM");
  assert.ok(froms.length >= 2, "multi-stage");
  assert.ok(dockerfile.some((d) => d.op === "RUN" && /npm ci\b.*--omit=dev/.test(d.args)), "npm ci --omit=dev");
  const last = finalStage();
  const users = last.filter((d) => d.op === "USER");
  assert.ok(users.length > 0, "USER in the final stage");
  assert.ok(!["root", "0", "0:0"].includes(users[users.length - 1]!.args), "non-root");
  // EXPOSE = default PORT, and the image's PORT (if set) agrees
  const expose = last.filter((d) => d.op === "EXPOSE").flatMap((d) => d.args.split(/\s+/)).map((p) => Number(p.split("/")[0]));
  const env = envOf(last);
  assert.deepEqual(expose, [defaultConfig().port]);
  if (env.PORT) assert.equal(Number(env.PORT), defaultConfig().port);
  // every ENV the image sets for the app is a variable the config reads, and valid
  const known = new Set(ENVIRONMENT.map((v) => v.name));
  for (const k of Object.keys(env)) assert.ok(known.has(k) || k === "NODE_ENV", `ENV ${k} is not read by src/config.ts`);
  loadConfig(env);
  // the cache directory is a volume
  const volumes = last.filter((d) => d.op === "VOLUME").flatMap((d) => (d.args.startsWith("[") ? execForm(d.args) : d.args.split(/\s+/)));
  assert.ok(env.LINDI_CACHE_DIR, "LINDI_CACHE_DIR set");
  assert.ok(volumes.includes(env.LINDI_CACHE_DIR!), "the cache directory is a VOLUME");
  assert.ok(last.some((d) => d.op === "RUN" && d.args.includes(env.LINDI_CACHE_DIR!) && /chown/.test(d.args)), "the volume belongs to the app user");
  // HEALTHCHECK probes a route that exists
  const hc = last.find((d) => d.op === "HEALTHCHECK");
  assert.ok(hc, "HEALTHCHECK");
  const probed = /(\/healthz|\/readyz)\b/.exec(hc.args)?.[1];
  assert.equal(probed, "/healthz");
  assert.ok(openapi.paths[probed!]?.get, `${probed} is a route`);
  assert.match(hc.args, /process\.env\.PORT\|\|8080|:8080\//, "health check uses the service port");
  // every COPY source exists
  for (const d of last.filter((x) => x.op === "COPY" && !x.args.startsWith("--from"))) {
    const parts = d.args.split(/\s+/);
    for (const src of parts.slice(0, -1)) assert.ok(existsSync(path.join(repoRoot, src)), `COPY ${src}`);
  }
});

test("Dockerfile: the command runs src/main.ts with a runtime the production install has", () => {
  const cmd = execForm(finalStage().find((d) => d.op === "CMD")!.args);
  assert.equal(cmd[0], "node");
  assert.ok(cmd.includes("src/main.ts"));
  assert.ok(existsSync(path.join(repoRoot, "src/main.ts")));
  if (cmd.includes("tsx")) {
    // `npm ci --omit=dev` leaves devDependencies out: the loader must be a dependency
    assert.ok(
      pkg.dependencies?.tsx,
      "the image runs TypeScript through tsx, but package.json lists tsx under devDependencies: `npm ci --omit=dev` " +
        "leaves it out and the container cannot start. Move tsx to dependencies.",
    );
  }
  // npm start runs the same command (node flags included: bench/support/serviceFlags.ts reads them there)
  assert.equal(pkg.scripts?.start, cmd.join(" "), "npm start = the image's CMD");
});

test("docker-compose.yml: parses; command, environment, port and volume agree with the image and the config", () => {
  const compose = parse(readFileSync(path.join(repoRoot, "docker-compose.yml"), "utf8")) as {
    services: Record<string, { build?: unknown; command?: string[]; ports?: string[]; volumes?: string[]; environment?: Record<string, string> }>;
    volumes?: Record<string, unknown>;
  };
  const svc = compose.services.lindi;
  assert.ok(svc, "service lindi");
  assert.ok(svc.build, "built from this repository");
  const cmd = execForm(finalStage().find((d) => d.op === "CMD")!.args);
  if (svc.command) assert.deepEqual(svc.command, cmd, "compose command = image CMD");

  const env = svc.environment ?? {};
  const known = new Map(ENVIRONMENT.map((v) => [v.name, v]));
  for (const k of Object.keys(env)) assert.ok(known.has(k), `environment ${k} is not read by src/config.ts`);
  for (const name of known.keys()) assert.ok(name in env, `${name} is documented in the compose file`);
  const cfg = loadConfig(env); // valid values
  assert.equal(cfg.allowPrivateNetworks, false, "safe default kept");
  assert.deepEqual(cfg.allowedHosts, defaultConfig().allowedHosts);

  // published port → the port the service listens on
  const port = String(cfg.port);
  assert.ok((svc.ports ?? []).some((p) => String(p).endsWith(`:${port}`)), `a port maps to ${port}`);
  // the cache directory is a named volume declared at the top level
  const mount = (svc.volumes ?? []).map((v) => String(v).split(":")).find(([, target]) => target === cfg.cacheDir);
  assert.ok(mount, `a volume is mounted at ${cfg.cacheDir}`);
  assert.ok(compose.volumes && mount[0]! in compose.volumes, "named volume declared");
});
