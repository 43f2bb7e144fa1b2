import { test, describe } from "node:test";
import assert from "node:assert/strict";
import Blosc from "numcodecs/blosc";
import {
  BLOSC_DEFAULT_CONFIG,
  computeBlocksize,
  decodeBlosc,
  encodeBloscLz4,
  encodeBloscLz4Sync,
  lz4CompressBlock,
  readBloscHeader,
} from "../src/lindi/codecs/blosc.ts";
import { decodeInlineBytes } from "../src/lindi/inlineBytes.ts";
import { goldenInlineChunks } from "./support/golden.ts";

/** Deterministic pseudo-random bytes. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s >>> 24;
  };
}

function structured(n: number, typesize: number): Uint8Array {
  // slowly varying little-endian integers: compressible after shuffle
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const e = Math.floor(i / typesize);
    const b = i % typesize;
    out[i] = b === 0 ? e & 0xff : b === 1 ? (e >> 8) & 0xff : 0;
  }
  return out;
}

const wasm = Blosc.fromConfig({ id: "blosc" });

describe("blosc", () => {
  test("default config object", () => {
    assert.deepEqual({ ...BLOSC_DEFAULT_CONFIG }, { blocksize: 0, clevel: 5, cname: "lz4", id: "blosc", shuffle: 1 });
  });

  test("80-byte int32 chunk: memcpyed frame with the reference header", async () => {
    const data = new Uint8Array(new Int32Array(20).map((_, i) => i).buffer);
    const enc = await encodeBloscLz4(data, 4);
    assert.deepEqual([...enc.subarray(0, 4)], [0x02, 0x01, 0x33, 0x04]);
    assert.deepEqual(readBloscHeader(enc), {
      version: 2,
      versionlz: 1,
      flags: 0x33,
      typesize: 4,
      nbytes: 80,
      blocksize: 80,
      cbytes: 96,
    });
    assert.deepEqual(enc.subarray(16), data);
    assert.deepEqual(await decodeBlosc(enc), data);
  });

  test("round trips (own decoder path and the WASM decoder)", async () => {
    const rnd = prng(42);
    const cases: [string, Uint8Array, number][] = [
      ["empty", new Uint8Array(0), 1],
      ["1 byte", new Uint8Array([7]), 1],
      ["127 bytes", structured(127, 1), 1],
      ["128 bytes i4", structured(128, 4), 4],
      ["800 bytes i8", structured(800, 8), 8],
      ["1000 bytes typesize 3", structured(999, 3), 3],
      ["typesize 16 split", structured(64 * 1024 + 48, 16), 16],
      ["typesize 17 no split", structured(17 * 5000, 17), 17],
      ["typesize 300 -> 1", structured(300 * 50, 300), 300],
      ["300 KB f8 with leftover block", structured(300_001, 8), 8],
      ["random 100 KB (incompressible)", Uint8Array.from({ length: 100_000 }, rnd), 1],
      ["zeros 1 MB", new Uint8Array(1 << 20), 4],
      ["text", new TextEncoder().encode(JSON.stringify(Array.from({ length: 20000 }, (_, i) => `name_${i % 97}`))), 1],
    ];
    for (const [name, data, ts] of cases) {
      const enc = await encodeBloscLz4(data, ts);
      const h = readBloscHeader(enc);
      assert.equal(h.nbytes, data.length, name);
      assert.equal(h.cbytes, enc.length, name);
      assert.equal(h.typesize, ts > 255 ? 1 : ts, name);
      assert.deepEqual(await decodeBlosc(enc), data, name);
      if (data.length > 0) assert.deepEqual(await wasm.decode(enc), data, `${name} (wasm decoder)`);
    }
  });

  test("incompressible data is stored memcpyed; compressible data shrinks", async () => {
    const rnd = prng(1);
    const r = Uint8Array.from({ length: 50_000 }, rnd);
    const er = await encodeBloscLz4(r, 1);
    assert.equal(er[2]! & 0x02, 0x02);
    assert.equal(er.length, r.length + 16);
    const z = structured(400_000, 8);
    const ez = await encodeBloscLz4(z, 8);
    assert.equal(ez[2]! & 0x02, 0);
    assert.ok(ez.length < z.length / 4, `${ez.length}`);
  });

  test("options: clevel 0, shuffle 0, forced blocksize, clevel 9", async () => {
    const d = structured(200_000, 4);
    for (const opts of [{ clevel: 0 }, { shuffle: 0 as const }, { blocksize: 4096 }, { clevel: 9 }, { clevel: 1 }]) {
      const enc = encodeBloscLz4Sync(d, 4, opts);
      assert.deepEqual(await decodeBlosc(enc), d, JSON.stringify(opts));
      assert.deepEqual(await wasm.decode(enc), d, JSON.stringify(opts));
    }
    assert.equal(encodeBloscLz4Sync(d, 4, { clevel: 0 })[2]! & 0x02, 0x02);
    // forced block size: kept when the block is not split (typesize > 16); c-blosc enlarges split blocks
    assert.equal(readBloscHeader(encodeBloscLz4Sync(d, 64, { blocksize: 4096 })).blocksize, 4096);
    assert.deepEqual(await decodeBlosc(encodeBloscLz4Sync(d, 64, { blocksize: 4096 })), d);
    assert.throws(() => encodeBloscLz4Sync(d, 4, { clevel: 10 }));
    assert.throws(() => encodeBloscLz4Sync(d, 0));
  });

  test("computeBlocksize follows c-blosc 1.21", () => {
    assert.equal(computeBlocksize(5, 4, 80, 0), 80);
    assert.equal(computeBlocksize(5, 8, 4, 0), 1);
    assert.equal(computeBlocksize(5, 1, 68472, 0), 68472); // split: enlarged to >= 64 KiB, capped by nbytes
    assert.equal(computeBlocksize(5, 1, 1456295, 0), 131072);
    assert.equal(computeBlocksize(5, 8, 1_000_000, 0), 1_000_000); // 128 KiB * 8 = 1 MiB > nbytes
  });

  test("frames from the WASM encoder decode, for every compressor and shuffle mode", async () => {
    const d = structured(100_000, 8);
    for (const cname of ["blosclz", "lz4", "lz4hc", "zlib", "zstd"]) {
      for (const shuffle of [0, 1, 2]) {
        const enc = await Blosc.fromConfig({ id: "blosc", cname, clevel: 5, shuffle, blocksize: 0 }).encode(d);
        assert.deepEqual(await decodeBlosc(enc), d, `${cname} shuffle ${shuffle}`);
      }
    }
  });

  test("corrupt frames throw instead of decoding to garbage", async () => {
    const d = structured(100_000, 4);
    const enc = encodeBloscLz4Sync(d, 4);
    const garbled = enc.slice();
    for (let i = 40; i < garbled.length; i++) garbled[i] = (i * 7) & 0xff;
    await assert.rejects(decodeBlosc(garbled), /blosc:/);
    const badStart = enc.slice();
    badStart[16] = 0xff;
    badStart[17] = 0xff;
    await assert.rejects(decodeBlosc(badStart), /out of bounds/);
    const badVersion = enc.slice();
    badVersion[0] = 9;
    await assert.rejects(decodeBlosc(badVersion), /version/);
  });

  test("LZ4 blocks decode with the numcodecs LZ4 decoder", async () => {
    const { default: LZ4 } = await import("numcodecs/lz4");
    const codec = LZ4.fromConfig({ acceleration: 1 });
    for (const d of [structured(1000, 4), structured(200_000, 1), new Uint8Array(12), new Uint8Array(13)]) {
      for (const accel of [1, 5]) {
        const block = lz4CompressBlock(d, accel);
        const framed = new Uint8Array(block.length + 4);
        new DataView(framed.buffer).setUint32(0, d.length, true);
        framed.set(block, 4);
        assert.deepEqual(await codec.decode(framed), d);
      }
    }
  });

  test("truncated frames are rejected", async () => {
    const enc = await encodeBloscLz4(structured(10_000, 4), 4);
    await assert.rejects(decodeBlosc(enc.subarray(0, 10)));
    await assert.rejects(decodeBlosc(enc.subarray(0, enc.length - 1)));
  });

  test("golden inline chunks: decode, and re-encode byte-identically", async () => {
    const chunks = goldenInlineChunks();
    assert.ok(chunks.length > 1000, `${chunks.length}`);
    const mismatched: string[] = [];
    for (const c of chunks) {
      const frame = decodeInlineBytes(c.value);
      const h = readBloscHeader(frame);
      const raw = await decodeBlosc(frame);
      assert.equal(raw.length, h.nbytes);
      if (!(h.flags & 0x02)) assert.deepEqual(raw, await wasm.decode(frame), `${c.file} ${c.key}: differs from the WASM decoder`);
      const again = encodeBloscLz4Sync(raw, h.typesize);
      if (Buffer.compare(Buffer.from(again), Buffer.from(frame)) !== 0) mismatched.push(`${c.file} ${c.key}`);
    }
    assert.deepEqual(mismatched.slice(0, 10), [], `${mismatched.length} of ${chunks.length} chunks differ`);
  });
});
