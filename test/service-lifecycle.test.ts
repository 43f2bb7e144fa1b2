/**
 * The service as a process: `src/main.ts` configured from the environment
 * (what `npm start` and the container run) with graceful SIGTERM, and a
 * SIGKILL in the middle of a cache write that must not leave an entry that
 * is served after a restart.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "undici";
import { defaultConfig } from "../src/config.ts";
import { buildServer } from "../src/server.ts";
import { repoRoot, requireCorpus } from "./support/corpus.ts";
import { startRangeOrigin, type RangeOrigin } from "./support/rangeOrigin.ts";
import { listenLoopback } from "./support/service.ts";

const FILE_A = "pynwb/tests/back_compat/1.0.2_nwbfile.nwb";
const FILE_B = "pynwb/tests/back_compat/1.0.2_str_pub.nwb";

let origin: RangeOrigin;
const dirs: string[] = [];
const children: ChildProcess[] = [];

before(async () => {
  origin = await startRangeOrigin({ root: requireCorpus() });
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await origin.close();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), "lindi-lifecycle-"));
  dirs.push(d);
  return d;
}

/** The loader flags this test runs with (tsx), for child processes. */
function loaderArgs(): string[] {
  const out: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if ((a === "--import" || a === "--require" || a === "--loader") && i + 1 < argv.length) out.push(a, argv[++i]!);
    else if (/^--(import|require|loader)=/.test(a)) out.push(a);
  }
  if (!out.some((a) => a.includes("tsx"))) out.push("--import", "tsx");
  return out;
}

/** Collects a child's stdout lines; resolves when one matches. */
function lines(child: ChildProcess): { all: string[]; waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray> } {
  const all: string[] = [];
  const waiters: Array<{ re: RegExp; resolve(m: RegExpExecArray): void }> = [];
  let buf = "";
  const onData = (d: Buffer) => {
    buf += d.toString("utf8");
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      all.push(line);
      for (const w of [...waiters]) {
        const m = w.re.exec(line);
        if (m) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    }
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", (d: Buffer) => all.push(`[stderr] ${d.toString("utf8").trimEnd()}`));
  return {
    all,
    waitFor(re, timeoutMs = 30_000) {
      for (const l of all) {
        const m = re.exec(l);
        if (m) return Promise.resolve(m);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no line matching ${re} within ${timeoutMs} ms; output:\n${all.join("\n")}`)),
          timeoutMs,
        );
        waiters.push({
          re,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
        });
        child.once("exit", (code, sig) => {
          clearTimeout(timer);
          reject(new Error(`child exited (${code ?? sig}) before printing ${re}; output:\n${all.join("\n")}`));
        });
      });
    },
  };
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
}

async function get(base: string, p: string, method: "GET" | "HEAD" = "GET") {
  const res = await request(base + p, { method });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text };
}

const lindi = (url: string, extra = "") => `/lindi?url=${encodeURIComponent(url)}${extra}`;

test("npm start's entry point: configured from the environment, SIGTERM answers in-flight requests and exits 0", async () => {
  const dir = await tempDir();
  const child = spawn(process.execPath, [...loaderArgs(), path.join(repoRoot, "src/main.ts")], {
    cwd: repoRoot,
    env: {
      ...process.env,
      PORT: "0",
      HOST: "127.0.0.1",
      LOG_LEVEL: "info",
      LINDI_CACHE_DIR: dir,
      LINDI_ALLOWED_HOSTS: "127.0.0.1",
      LINDI_ALLOW_PRIVATE_NETWORKS: "true",
      LINDI_POOL_SIZE: "1",
      LINDI_MAX_EVENT_LOOP_DELAY_MS: "0",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  const out = lines(child);
  const m = await out.waitFor(/Server listening at (http:\/\/127\.0\.0\.1:\d+)/);
  const base = m[1]!;

  const first = await get(base, lindi(origin.url(FILE_A)));
  assert.equal(first.status, 200, first.text);
  assert.equal((await get(base, "/healthz")).status, 200);
  // request ids in the log
  await out.waitFor(/"reqId":"[0-9a-f-]{36}".*"msg":"request completed"/);

  // a request waiting for a slow build when SIGTERM arrives gets an answer, not a reset
  origin.setFaults({ latencyMs: 500 });
  try {
    const pending = get(base, lindi(origin.url(FILE_B), "&wait=60"));
    // wait until the build runs (probe done)
    let running = "0";
    for (let i = 0; i < 100 && running !== "1"; i++) {
      running = /^lindi_builds_running (\d+)$/m.exec((await get(base, "/metrics")).text)?.[1] ?? "0";
      if (running !== "1") await sleep(50);
    }
    assert.equal(running, "1", "a build is running");
    child.kill("SIGTERM");
    const answer = await pending;
    assert.equal(answer.status, 503, answer.text);
    assert.ok(answer.headers["retry-after"]);
    const { code, signal } = await exited(child);
    assert.equal(signal, null);
    assert.equal(code, 0, out.all.join("\n"));
    assert.ok(out.all.some((l) => l.includes('"msg":"shutting down"')));
    assert.ok(out.all.some((l) => l.includes('"msg":"stopped"')));
  } finally {
    origin.setFaults({});
  }
});

test("a bad environment stops the start with a message (exit 2)", async () => {
  const child = spawn(process.execPath, [...loaderArgs(), path.join(repoRoot, "src/main.ts")], {
    cwd: repoRoot,
    env: { ...process.env, PORT: "eighty", LINDI_POOL_SIZE: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  const out = lines(child);
  const { code } = await exited(child);
  assert.equal(code, 2);
  const text = out.all.join("\n");
  assert.match(text, /PORT must be an integer/);
  assert.match(text, /LINDI_POOL_SIZE/);
});

test("SIGKILL during a cache write: after a restart the entry is not served, and it is rebuilt", async () => {
  const dir = path.join(await tempDir(), "cache");
  // a server in a child process whose disk write stops half-way (the hook never returns)
  const code = `
    import { buildServer } from ${JSON.stringify(path.join(repoRoot, "src/server.ts"))};
    import { defaultConfig } from ${JSON.stringify(path.join(repoRoot, "src/config.ts"))};
    const config = { ...defaultConfig(), port: 0, host: "127.0.0.1", logLevel: "silent", cacheDir: ${JSON.stringify(dir)},
      allowedHosts: ["127.0.0.1"], allowPrivateNetworks: true, poolSize: 1, maxEventLoopDelayMs: 0 };
    const app = await buildServer(config, {
      onCacheWrite: async (stage, tmp) => {
        if (stage === "partial") { process.stdout.write("PARTIAL " + tmp + "\\n"); await new Promise(() => {}); }
      },
    });
    await app.listen({ port: 0, host: "127.0.0.1" });
    process.stdout.write("PORT " + app.server.address().port + "\\n");
  `;
  // a script file, not -e: worker threads inherit the flags, and --input-type would break them
  const script = path.join(path.dirname(dir), "child.mjs");
  await writeFile(script, code);
  const child = spawn(process.execPath, [...loaderArgs(), script], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  const out = lines(child);
  const port = (await out.waitFor(/^PORT (\d+)$/))[1]!;
  const base = `http://127.0.0.1:${port}`;
  const url = origin.url(FILE_A);
  const served = await get(base, lindi(url));
  assert.equal(served.status, 200, "answered from memory while the disk write is under way");
  const tmp = (await out.waitFor(/^PARTIAL (.+)$/))[1]!;
  assert.ok(tmp.startsWith(path.join(dir, "tmp")));
  child.kill("SIGKILL");
  const { signal } = await exited(child);
  assert.equal(signal, "SIGKILL");
  // the half-written file is there, nothing under entries/
  assert.deepEqual(await readdir(path.join(dir, "tmp")), [path.basename(tmp)]);
  const entries = (await readdir(path.join(dir, "entries"), { recursive: true })).filter((f) => f.endsWith(".lindi"));
  assert.deepEqual(entries, []);

  // restart on the same directory
  const app = await buildServer({
    ...defaultConfig(),
    port: 0,
    host: "127.0.0.1",
    logLevel: "silent",
    cacheDir: dir,
    allowedHosts: ["127.0.0.1"],
    allowPrivateNetworks: true,
    poolSize: 1,
    maxEventLoopDelayMs: 0,
  });
  try {
    const base2 = await listenLoopback(app);
    assert.deepEqual(await readdir(path.join(dir, "tmp")), [], "leftovers removed at start");
    assert.equal((await get(base2, lindi(url), "HEAD")).status, 404, "not cached");
    const rebuilt = await get(base2, lindi(url));
    assert.equal(rebuilt.status, 200);
    assert.equal(rebuilt.headers["x-lindi-cache"], "build");
    assert.equal(rebuilt.text, served.text, "the same index");
  } finally {
    await app.close();
  }
});
