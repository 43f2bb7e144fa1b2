/**
 * Cache tiers (src/service/cache/): memory LRU by bytes, disk directory with
 * atomic writes, LRU eviction by bytes, an index that survives a restart, and
 * damaged or half-written files that are never served.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, truncate, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { gunzipSync, brotliDecompressSync } from "node:zlib";
import { DiskCache, decodeEntry, encodeEntry } from "../src/service/cache/disk.ts";
import { MemoryCache } from "../src/service/cache/memory.ts";
import { TieredCache } from "../src/service/cache/index.ts";
import { entryBytes, etagFor, makeEntry, type CacheEntry } from "../src/service/cache/entry.ts";
import { cacheKey } from "../src/service/key.ts";

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "lindi-cache-test-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** An entry whose JSON is `size` bytes of fairly compressible text. */
async function entry(name: string, size = 10_000): Promise<CacheEntry> {
  const key = cacheKey(`http://example.org/${name}`, { chunksThreshold: 1000, splitBytes: 20_000_000 }, "etag:x");
  let text = `{"name": "${name}", "refs": {`;
  let i = 0;
  while (text.length < size - 20) text += `"k${i}": ${(i * 7919) % 10007}, `, i++;
  text = (text + "}}").slice(0, Math.max(size, 0));
  const json = new TextEncoder().encode(text);
  return makeEntry(
    {
      key,
      url: `http://example.org/${name}`,
      options: { chunksThreshold: 1000, splitBytes: 20_000_000 },
      validator: "etag:x",
      source: { size: 1, etag: '"x"', lastModified: null },
      createdAt: new Date().toISOString(),
      buildMillis: 1,
      bytesFetched: 0,
      requests: 0,
    },
    json,
  );
}

function fileSize(e: CacheEntry): number {
  return encodeEntry(e).reduce((n, c) => n + c.byteLength, 0);
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (d.isFile()) out.push(path.join(d.parentPath, d.name));
  }
  return out;
}

test("entry: gzip and brotli variants decode to the JSON; ETags differ per coding", async () => {
  const e = await entry("a", 50_000);
  assert.deepEqual(gunzipSync(e.gzip), e.identity);
  assert.deepEqual(brotliDecompressSync(e.br), e.identity);
  assert.ok(e.gzip.byteLength < e.identity.byteLength / 2);
  assert.notEqual(etagFor(e.meta.hash, "identity"), etagFor(e.meta.hash, "gzip"));
  assert.match(etagFor(e.meta.hash, "br"), /^"[0-9a-f]{32}-br"$/);
});

test("disk: round trip, and an entry survives a restart (new instance, same directory)", async (t) => {
  const dir = await tempDir(t);
  const e = await entry("a");
  const c1 = await DiskCache.open({ dir, maxBytes: 1e9 });
  assert.equal(await c1.put(e), true);
  const back = await c1.get(e.meta.key);
  assert.ok(back);
  assert.deepEqual(back.identity, e.identity);
  assert.deepEqual(back.meta, e.meta);

  const c2 = await DiskCache.open({ dir, maxBytes: 1e9 });
  assert.equal(c2.entries, 1);
  assert.equal(c2.bytes, fileSize(e));
  const again = await c2.get(e.meta.key);
  assert.ok(again);
  assert.deepEqual(again.br, e.br);
});

test("disk: bounded by bytes, least recently used evicted first, order kept across a restart", async (t) => {
  const dir = await tempDir(t);
  const [a, b, c, d] = await Promise.all(["a", "b", "c", "d"].map((n) => entry(n, 20_000)));
  const one = fileSize(a!);
  const cache = await DiskCache.open({ dir, maxBytes: Math.floor(one * 3.5) });
  await cache.put(a!);
  await cache.put(b!);
  await cache.put(c!);
  // touch a: b is now the least recently used
  assert.ok(await cache.get(a!.meta.key));
  await cache.put(d!);
  assert.equal(cache.has(b!.meta.key), false, "b evicted");
  assert.deepEqual(cache.keys().sort(), [a!, c!, d!].map((e) => e.meta.key).sort());
  assert.ok(cache.bytes <= cache.maxBytes);
  assert.equal((await filesUnder(path.join(dir, "entries"))).length, 3);

  // the use order is kept in mtimes: make them explicit (coarse clocks) and restart with a smaller bound
  const base = Date.now() / 1000;
  const fileOf = (e: CacheEntry) => path.join(dir, "entries", e.meta.key.slice(0, 2), `${e.meta.key}.lindi`);
  await utimes(fileOf(c!), base - 30, base - 30);
  await utimes(fileOf(a!), base - 20, base - 20);
  await utimes(fileOf(d!), base - 10, base - 10);
  const smaller = await DiskCache.open({ dir, maxBytes: Math.floor(one * 2.5) });
  assert.deepEqual(smaller.keys(), [a!, d!].map((e) => e.meta.key), "oldest (c) evicted at start");
});

test("disk: an entry larger than the bound is not stored", async (t) => {
  const dir = await tempDir(t);
  const big = await entry("big", 100_000);
  const cache = await DiskCache.open({ dir, maxBytes: 1000 });
  assert.equal(await cache.put(big), false);
  assert.equal(cache.entries, 0);
  assert.deepEqual(await filesUnder(path.join(dir, "entries")), []);
});

test("disk: damaged files are dropped, never served", async (t) => {
  const dir = await tempDir(t);
  const [a, b, c] = await Promise.all(["a", "b", "c"].map((n) => entry(n)));
  const c1 = await DiskCache.open({ dir, maxBytes: 1e9 });
  for (const e of [a!, b!, c!]) await c1.put(e);
  const fileOf = (e: CacheEntry) => path.join(dir, "entries", e.meta.key.slice(0, 2), `${e.meta.key}.lindi`);
  // a: cut short (as a file system without fsync-before-rename might leave it after power loss)
  await truncate(fileOf(a!), fileSize(a!) - 100);
  // b: one byte flipped in the body
  const buf = await readFile(fileOf(b!));
  buf[buf.byteLength - 10] ^= 0xff;
  await writeFile(fileOf(b!), buf);

  const corrupt: string[] = [];
  const c2 = await DiskCache.open({ dir, maxBytes: 1e9, onCorrupt: (k) => corrupt.push(k) });
  assert.equal(await c2.get(a!.meta.key), undefined);
  assert.equal(await c2.get(b!.meta.key), undefined);
  assert.ok(await c2.get(c!.meta.key));
  assert.deepEqual(corrupt.sort(), [a!.meta.key, b!.meta.key].sort());
  assert.equal(c2.entries, 1);
  assert.equal((await filesUnder(path.join(dir, "entries"))).length, 1, "damaged files deleted");
  assert.throws(() => decodeEntry(Buffer.from("LNDCACH1\0\0\0\x05{}")));
});

test("disk: a write interrupted before its rename leaves nothing under entries/; the next start removes the temporary file", async (t) => {
  const dir = await tempDir(t);
  const e = await entry("a");
  let tmpSeen = "";
  const failing = await DiskCache.open({
    dir,
    maxBytes: 1e9,
    onWrite: (stage, tmp) => {
      tmpSeen = tmp;
      if (stage === "partial") throw new Error("simulated crash");
    },
  });
  await assert.rejects(failing.put(e), /simulated crash/);
  assert.equal(failing.has(e.meta.key), false);
  assert.deepEqual(await filesUnder(path.join(dir, "entries")), []);

  // a crash (no cleanup) leaves the half-written temporary file: simulate that one
  await writeFile(tmpSeen, encodeEntry(e)[2]!);
  await writeFile(path.join(dir, "entries", "stray.lindi.tmp"), "junk");
  const next = await DiskCache.open({ dir, maxBytes: 1e9 });
  assert.equal(next.entries, 0);
  assert.equal(await next.get(e.meta.key), undefined);
  assert.deepEqual(await readdir(path.join(dir, "tmp")), [], "temporary files removed at start");
});

test("disk: writable() reports a usable directory", async (t) => {
  const dir = await tempDir(t);
  const cache = await DiskCache.open({ dir, maxBytes: 1e9 });
  assert.equal(await cache.writable(), true);
  await rm(path.join(dir, "tmp"), { recursive: true });
  assert.equal(await cache.writable(), false);
});

test("memory: bounded by the bytes of all variants; LRU order", async () => {
  const [a, b, c] = await Promise.all(["a", "b", "c"].map((n) => entry(n, 20_000)));
  const mem = new MemoryCache(Math.floor(entryBytes(a!) * 2.5));
  mem.set(a!);
  mem.set(b!);
  assert.ok(mem.get(a!.meta.key)); // b is now the oldest
  mem.set(c!);
  assert.equal(mem.has(b!.meta.key), false);
  assert.equal(mem.has(a!.meta.key), true);
  assert.equal(mem.entries, 2);
  assert.ok(mem.bytes <= mem.maxBytes);
  const none = new MemoryCache(0);
  none.set(a!);
  assert.equal(none.get(a!.meta.key), undefined);
});

test("tiered: memory first, disk hits promoted, flush waits for disk writes", async (t) => {
  const dir = await tempDir(t);
  const e = await entry("a");
  const c1 = await TieredCache.open({ dir, diskMaxBytes: 1e9, memoryMaxBytes: 1e8 });
  void c1.put(e);
  assert.equal((await c1.get(e.meta.key))?.tier, "memory");
  await c1.flush();
  const c2 = await TieredCache.open({ dir, diskMaxBytes: 1e9, memoryMaxBytes: 1e8 });
  assert.equal((await c2.get(e.meta.key))?.tier, "disk");
  assert.equal((await c2.get(e.meta.key))?.tier, "memory");
  assert.equal(await c2.get("0".repeat(64)), undefined);
});
