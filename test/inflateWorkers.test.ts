/**
 * The inflate workers (src/slices/inflateWorkers.ts): same bytes and same
 * errors as node:zlib on the event loop; the first chunk of an event-loop turn
 * stays on it; a worker's queue is bounded; a dying worker loses nothing.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { setImmediate as nextTurn } from "node:timers/promises";
import { deflateSync, inflateSync } from "node:zlib";
import { ZlibCodec } from "../src/slices/codecs.ts";
import { inflateWorkers, InflateWorkers, useInflateWorkers } from "../src/slices/inflateWorkers.ts";

/** n zlib streams of 16 KiB of float32 noise (compresses ~2x, like the bench file). */
function chunks(n: number): { compressed: Buffer; plain: Buffer }[] {
  let seed = 7;
  return Array.from({ length: n }, () => {
    const f = new Float32Array(4096);
    for (let i = 0; i < f.length; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      f[i] = Math.round((Math.sin(i / 300) * 100 + (seed / 2 ** 32) * 4) * 16) / 16;
    }
    const plain = Buffer.from(f.buffer);
    return { compressed: deflateSync(plain, { level: 4 }), plain };
  });
}

test("InflateWorkers: a burst is shared with the worker up to its queue bound; every chunk inflates to the same bytes", async () => {
  const pool = new InflateWorkers(1);
  try {
    const input = chunks(40);
    const outs = input.map((c) => pool.inflate(c.compressed, 16384 + 64));
    assert.ok(!(outs[0] instanceof Promise), "the first chunk of a turn is inflated on the spot");
    assert.ok(outs[1] instanceof Promise, "the next ones go to the worker");
    assert.ok(!(outs[33] instanceof Promise), "past 32 waiting chunks the event loop inflates them itself");
    const got = await Promise.all(outs);
    got.forEach((g, i) => assert.deepEqual(Buffer.from(g), input[i]!.plain, `chunk ${i}`));
    assert.equal(pool.stats.offloaded, 32);
    // a new turn: its first chunk is again inflated on the spot
    await nextTurn();
    assert.ok(!(pool.inflate(input[0]!.compressed, undefined) instanceof Promise));
  } finally {
    await pool.close();
  }
});

test("InflateWorkers: a corrupt stream fails on the worker exactly as inflateSync fails", async () => {
  const pool = new InflateWorkers(1);
  try {
    const bad = Buffer.from(chunks(1)[0]!.compressed);
    bad.fill(0xff, 10, 40);
    const expected = (() => {
      try {
        inflateSync(bad);
      } catch (e) {
        return e as NodeJS.ErrnoException;
      }
      throw new Error("the corrupt stream inflated");
    })();
    pool.inflate(chunks(1)[0]!.compressed, undefined); // the turn's first chunk: on the spot
    const onWorker = pool.inflate(bad, undefined);
    assert.ok(onWorker instanceof Promise);
    await assert.rejects(onWorker, (e: NodeJS.ErrnoException) => e.message === expected.message && e.code === expected.code && e.errno === expected.errno);
  } finally {
    await pool.close();
  }
});

test("InflateWorkers: chunks held by a worker that dies are inflated on the event loop; the next burst gets a new worker", async () => {
  const pool = new InflateWorkers(1);
  try {
    const input = chunks(20);
    const outs = input.map((c) => pool.inflate(c.compressed, undefined));
    // kill the worker behind the pool's back, with chunks still queued on it
    const slot = (pool as unknown as { slots: ({ worker: { terminate(): Promise<number> } } | undefined)[] }).slots[0];
    assert.ok(slot, "a worker was started");
    void slot.worker.terminate();
    const got = await Promise.all(outs);
    got.forEach((g, i) => assert.deepEqual(Buffer.from(g), input[i]!.plain, `chunk ${i}`));
    assert.ok(pool.stats.recovered > 0, "some chunks were recovered from the dead worker");
    assert.equal(pool.stats.offloaded + pool.stats.recovered, 19);
    await nextTurn();
    const before = pool.stats.offloaded;
    const again = await Promise.all(input.slice(0, 3).map((c) => pool.inflate(c.compressed, undefined)));
    again.forEach((g, i) => assert.deepEqual(Buffer.from(g), input[i]!.plain));
    assert.equal(pool.stats.offloaded - before, 2, "a new worker took the burst's later chunks");
  } finally {
    await pool.close();
  }
});

test("InflateWorkers: after close everything is inflated on the event loop", async () => {
  const pool = new InflateWorkers(2);
  const input = chunks(4);
  await pool.close();
  for (const c of input) {
    const out = pool.inflate(c.compressed, undefined);
    assert.ok(!(out instanceof Promise));
    assert.deepEqual(Buffer.from(out), c.plain);
  }
  assert.equal(pool.stats.offloaded, 0);
  assert.throws(() => new InflateWorkers(0), RangeError);
});

test("useInflateWorkers: the process-wide pool ZlibCodec uses lives while someone uses it", async () => {
  assert.equal(inflateWorkers(), undefined, "no pool before anyone asks");
  const none = useInflateWorkers(0);
  assert.equal(inflateWorkers(), undefined, "0 threads: no pool");
  await none();
  const leaveA = useInflateWorkers(1);
  const leaveB = useInflateWorkers(1);
  const pool = inflateWorkers();
  assert.ok(pool);
  // ZlibCodec shares a burst with the pool and decodes the same bytes
  const codec = new ZlibCodec({ chunkSize: 16384 + 64 });
  const input = chunks(6);
  const before = pool.stats.offloaded;
  const got = await Promise.all(input.map((c) => codec.decode(c.compressed)));
  got.forEach((g, i) => assert.deepEqual(Buffer.from(g), input[i]!.plain));
  assert.equal(pool.stats.offloaded - before, 5, "all but the first chunk of the burst went to the worker");
  await leaveA();
  await leaveA(); // twice: no effect
  assert.equal(inflateWorkers(), pool, "still used by B");
  await leaveB();
  assert.equal(inflateWorkers(), undefined, "the last one out stopped it");
});
