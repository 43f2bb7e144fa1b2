/**
 * The index worker pool: crashes, out-of-memory, timeouts, cancellation, a
 * full queue and many failing builds each fail only their own build with a
 * clear error; the pool replaces the worker and keeps working, without
 * leaking threads or ports.
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { createIndexBuilder, type RemoteIndexBuilder } from "../src/index/builder.ts";
import { BuildAbortedError, BuildQueueFullError, BuildTimeoutError, WorkerCrashedError } from "../src/index/remoteErrors.ts";
import type { SourceInfo } from "../src/index/types.ts";
import { NotHdf5Error, indexLocalFile } from "../src/lindi/indexHdf5.ts";
import { stringifyPython } from "../src/lindi/pythonJson.ts";
import { corpusDir } from "./support/corpus.ts";
import { startRangeOrigin, type RangeOrigin } from "./support/rangeOrigin.ts";

const FILE = "h5serv/test/test_files/tgroup.h5";
const NOT_HDF5 = "features.json";
const OPTS = { chunksThreshold: 1000, splitBytes: 20_000_000 };

let origin: RangeOrigin;
let expected: string;

/** HEAD answers like a real file; GET never answers (the worker blocks on its first block). */
interface HangingOrigin {
  url: string;
  close(): Promise<void>;
}

async function startHangingOrigin(bytes: Uint8Array): Promise<HangingOrigin> {
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    if (req.method === "HEAD") {
      res.writeHead(200, { "content-length": String(bytes.byteLength), "accept-ranges": "bytes", etag: '"hang"' }).end();
    }
    // GET: never answered
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/file.h5`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function indexRemote(builder: RemoteIndexBuilder, url: string, signal?: AbortSignal): Promise<string> {
  const info = await builder.probe(url, signal);
  const r = await builder.build(info, OPTS, signal);
  return new TextDecoder().decode(r.json);
}

async function rejectsWith<T extends Error>(p: Promise<unknown>, type: new (...a: never[]) => T, maxMs: number): Promise<T> {
  const t0 = performance.now();
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  const ms = performance.now() - t0;
  assert.ok(err instanceof type, `expected ${type.name}, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
  assert.ok(ms < maxMs, `took ${Math.round(ms)} ms (limit ${maxMs})`);
  return err;
}

/** Waits until the pool has `n` threads again (a replaced worker starts asynchronously). */
async function threadsBack(builder: RemoteIndexBuilder, n: number): Promise<void> {
  for (let i = 0; i < 100 && builder.pool.threads !== n; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(builder.pool.threads, n);
}

before(async () => {
  origin = await startRangeOrigin({ root: corpusDir });
  expected = stringifyPython((await indexLocalFile(path.join(corpusDir, FILE), { url: origin.url(FILE) })) as never);
});

after(async () => {
  await origin?.close();
});

test("a crashing worker (exit, uncaught exception) fails only its build; the pool replaces it", async () => {
  const faults = new Map<string, "exit" | "uncaught">();
  const builder = createIndexBuilder({
    poolSize: 2,
    testHooks: { workerFault: (s: SourceInfo) => faults.get(s.url) },
  });
  try {
    const crashUrl = origin.url(FILE) + "?crash";
    const uncaughtUrl = origin.url(FILE) + "?uncaught";
    faults.set(crashUrl, "exit");
    faults.set(uncaughtUrl, "uncaught");
    const good = indexRemote(builder, origin.url(FILE));
    const e1 = await rejectsWith(indexRemote(builder, crashUrl), WorkerCrashedError, 10_000);
    assert.match(e1.message, /index worker crashed while building .*exited with code/);
    assert.equal(e1.statusHint, 500);
    const e2 = await rejectsWith(indexRemote(builder, uncaughtUrl), WorkerCrashedError, 10_000);
    assert.match(e2.message, /injected uncaught exception/);
    assert.equal(await good, expected);
    await threadsBack(builder, 2);
    const again = await Promise.all([indexRemote(builder, origin.url(FILE)), indexRemote(builder, origin.url(FILE))]);
    assert.deepEqual(again, [expected, expected]);
  } finally {
    await builder.close();
  }
});

test("a worker out of memory (resourceLimits) fails only its build", async () => {
  const builder = createIndexBuilder({
    poolSize: 1,
    resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 8 },
    testHooks: { workerFault: (s) => (s.url.endsWith("?oom") ? "oom" : undefined) },
  });
  try {
    const e = await rejectsWith(indexRemote(builder, origin.url(FILE) + "?oom"), WorkerCrashedError, 30_000);
    assert.match(e.message, /memory/i);
    await threadsBack(builder, 1);
    assert.equal(await indexRemote(builder, origin.url(FILE)), expected);
  } finally {
    await builder.close();
  }
});

test("timeout: a build stuck in CPU or in I/O is stopped, its worker replaced", async () => {
  const hanging = await startHangingOrigin(readFileSync(path.join(corpusDir, FILE)));
  const builder = createIndexBuilder({
    poolSize: 1,
    buildTimeoutMs: 1000,
    testHooks: { workerFault: (s) => (s.url.endsWith("?spin") ? "spin" : undefined) },
  });
  try {
    const spin = await rejectsWith(indexRemote(builder, origin.url(FILE) + "?spin"), BuildTimeoutError, 5000);
    assert.equal(spin.statusHint, 504);
    await threadsBack(builder, 1);
    // phase A blocked on a block that never comes (the worker sits in Atomics.wait)
    await rejectsWith(indexRemote(builder, hanging.url), BuildTimeoutError, 5000);
    await threadsBack(builder, 1);
    assert.equal(await indexRemote(builder, origin.url(FILE)), expected);
  } finally {
    await builder.close();
    await hanging.close();
  }
});

test("cancellation: an AbortSignal stops a running build at once, and a queued one before it starts", async () => {
  const hanging = await startHangingOrigin(readFileSync(path.join(corpusDir, FILE)));
  const builder = createIndexBuilder({ poolSize: 1 });
  try {
    const running = new AbortController();
    const queued = new AbortController();
    const p1 = indexRemote(builder, hanging.url, running.signal);
    await new Promise((r) => setTimeout(r, 300));
    const p2 = indexRemote(builder, hanging.url, queued.signal);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(builder.pool.queued, 1);
    queued.abort(new Error("no longer needed"));
    const e2 = await rejectsWith(p2, BuildAbortedError, 1000);
    assert.match(e2.message, /cancelled \(no longer needed\)/);
    running.abort();
    await rejectsWith(p1, BuildAbortedError, 1000);
    await threadsBack(builder, 1);
    // already aborted: refused before any work
    await rejectsWith(builder.build({ url: hanging.url, resolvedUrl: hanging.url, size: 1, etag: null, lastModified: null }, OPTS, AbortSignal.abort()), BuildAbortedError, 100);
    assert.equal(await indexRemote(builder, origin.url(FILE)), expected);
  } finally {
    await builder.close();
    await hanging.close();
  }
});

test("a full queue refuses new builds (503)", async () => {
  const hanging = await startHangingOrigin(readFileSync(path.join(corpusDir, FILE)));
  const builder = createIndexBuilder({ poolSize: 1, maxQueue: 1 });
  const ac = new AbortController();
  try {
    const info = await builder.probe(hanging.url);
    const running = builder.build(info, OPTS, ac.signal);
    running.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 200));
    const waiting = builder.build(info, OPTS, ac.signal);
    waiting.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 200));
    const e = await rejectsWith(builder.build(info, OPTS, ac.signal), BuildQueueFullError, 1000);
    assert.equal(e.statusHint, 503);
    ac.abort();
    await rejectsWith(running, BuildAbortedError, 1000);
    await rejectsWith(waiting, BuildAbortedError, 1000);
  } finally {
    await builder.close();
    await hanging.close();
  }
});

test("100 failing builds: the same threads, no leaked ports or handles", async () => {
  const builder = createIndexBuilder({ poolSize: 2 });
  try {
    const url = origin.url(NOT_HDF5);
    const info = await builder.probe(url);
    // warm up, then count
    await rejectsWith(builder.build(info, OPTS), NotHdf5Error, 10_000);
    const threadIds = builder.pool.threads;
    const handles = process.getActiveResourcesInfo().length;
    for (let i = 0; i < 100; i += 4) {
      await Promise.all(
        [0, 1, 2, 3].map(() => rejectsWith(builder.build(info, OPTS), NotHdf5Error, 10_000)),
      );
    }
    assert.equal(builder.pool.threads, threadIds);
    assert.equal(builder.pool.threads, 2);
    assert.equal(builder.pool.active, 0);
    await new Promise((r) => setTimeout(r, 50));
    const after = process.getActiveResourcesInfo().length;
    assert.ok(after <= handles + 4, `active handles grew from ${handles} to ${after}`);
    assert.equal(await indexRemote(builder, origin.url(FILE)), expected);
  } finally {
    await builder.close();
  }
});

test("close(): running builds are cancelled, later ones refused", async () => {
  const hanging = await startHangingOrigin(readFileSync(path.join(corpusDir, FILE)));
  const builder = createIndexBuilder({ poolSize: 1 });
  try {
    const p = indexRemote(builder, hanging.url);
    p.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    await builder.close();
    await rejectsWith(p, BuildAbortedError, 1000);
    await rejectsWith(indexRemote(builder, origin.url(FILE)), BuildAbortedError, 1000);
  } finally {
    await builder.close();
    await hanging.close();
  }
});
