/**
 * GET /chunk and the `lindi=` sources, end to end (real server, loopback
 * origins):
 *
 *   - every chunk of a few files: the bytes equal the file's bytes at the
 *     ref's offset (inline chunks: the index's bytes), with the decode headers;
 *   - Range: 206 + Content-Range (closed, open-ended, suffix), 416, multiple
 *     ranges ignored (200); on inline chunks too;
 *   - never-written chunks: 404 with X-Lindi-Fill-Value; bad keys 400;
 *   - chunks of _EXTERNAL_ARRAY_LINK datasets (from the HDF5 chunk index);
 *   - streaming: the first bytes arrive long before a slow origin finishes;
 *   - lindi= on a .lindi.json and on a .lindi.tar (with a `./blobs/…` member)
 *     served by a second loopback origin: /meta, /slice and /chunk answer as
 *     for url=; refs to hosts not allowed or to local files are refused (403);
 *     a changed .lindi.json is picked up.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "undici";
import type { FastifyInstance } from "fastify";
import { decodeInlineBytes } from "../src/lindi/inlineBytes.ts";
import { parsePythonJson, stringifyPython, type PyJson } from "../src/lindi/pythonJson.ts";
import { LindiTarWriter } from "../src/lindi/tar/lindiTar.ts";
import { corpusFile } from "./support/corpus.ts";
import { startRangeOrigin, type RangeOrigin } from "./support/rangeOrigin.ts";
import { startCorpusService, type CorpusService } from "./support/corpusService.ts";
import { testConfig, call } from "./support/service.ts";


async function fileBytes(abs: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(abs, "r");
  try {
    const b = Buffer.alloc(length);
    await fh.read(b, 0, length, offset);
    return b;
  } finally {
    await fh.close();
  }
}

let origin: RangeOrigin;
let mirror: RangeOrigin; // serves .lindi.json / .lindi.tar files made by the tests
let mirrorDir: string;
let app: FastifyInstance;
let base: string;
let service: CorpusService;

before(async () => {
  service = await startCorpusService("lindi-chunk-test-", (dir) => testConfig(dir));
  ({ origin, app, base } = service);
  mirrorDir = await mkdtemp(path.join(tmpdir(), "lindi-mirror-"));
  mirror = await startRangeOrigin({ root: mirrorDir });
});

after(async () => {
  await service.close();
  await mirror.close();
  await rm(mirrorDir, { recursive: true, force: true });
});

const src = (rel: string) => `url=${encodeURIComponent(origin.url(rel))}`;
const chunk = (source: string, p: string, key: string, extra = "") => `/chunk?${source}&path=${encodeURIComponent(p)}&key=${key}${extra}`;

/** The index the service serves for a corpus file (GET /lindi). */
async function indexOf(rel: string, extra = ""): Promise<{ text: string; refs: Record<string, PyJson> }> {
  const a = await call(base, `/lindi?${src(rel)}${extra}`);
  assert.equal(a.status, 200, a.body.toString());
  const text = a.body.toString("utf8");
  return { text, refs: (parsePythonJson(text) as { refs: Record<string, PyJson> }).refs };
}

const CHUNK_KEY = /^(.*)\/(\d+(?:\.\d+)*)$/;

describe("GET /chunk", () => {
  const NWB = "generated-nwb/ecephys.nwb";
  const DATA = "acquisition/ElectricalSeries/data";

  test("every chunk of three files equals the file's bytes (inline chunks: the index's bytes)", async () => {
    let ranges = 0;
    let inline = 0;
    for (const rel of [NWB, "synthetic/chunk_index_latest.h5", "pynwb/tests/back_compat/2.1.0_nwbfile_with_extension.nwb"]) {
      const { refs } = await indexOf(rel);
      for (const [k, v] of Object.entries(refs)) {
        const m = CHUNK_KEY.exec(k);
        if (!m) continue;
        const [, p, key] = m as unknown as [string, string, string];
        const a = await call(base, chunk(src(rel), p, key));
        assert.equal(a.status, 200, `${rel} ${k}: ${a.body.toString().slice(0, 200)}`);
        assert.equal(a.headers["content-type"], "application/octet-stream");
        assert.equal(a.headers["accept-ranges"], "bytes");
        const zarray = refs[`${p}/.zarray`] as Record<string, PyJson>;
        assert.equal(a.headers["x-lindi-dtype"], zarray.dtype);
        assert.equal(a.headers["x-lindi-chunk-shape"], (zarray.chunks as number[]).join(","));
        assert.deepEqual(JSON.parse(a.headers["x-lindi-filters"]!), JSON.parse(JSON.stringify(zarray.filters, (_k, x: unknown) => (x && typeof x === "object" && "value" in (x as object) ? (x as { value: number }).value : x))));
        assert.ok("x-lindi-compressor" in a.headers && "x-lindi-fill-value" in a.headers);
        if (Array.isArray(v)) {
          const [, off, len] = v as [string, number, number];
          assert.equal(Number(a.headers["content-length"]), len);
          assert.ok(a.body.equals(await fileBytes(corpusFile(rel), off, len)), `${rel} ${k}: bytes differ`);
          ranges++;
        } else if (typeof v === "string") {
          assert.ok(a.body.equals(Buffer.from(decodeInlineBytes(v))), `${rel} ${k}: inline bytes differ`);
          inline++;
        }
      }
    }
    assert.ok(ranges >= 30, `${ranges} byte-range chunks`);
    assert.ok(inline >= 50, `${inline} inline chunks`);
  });

  test("Range: 206 + Content-Range, open-ended and suffix ranges, 416 outside, several ranges → 200", async () => {
    const { refs } = await indexOf(NWB);
    const [, off, len] = refs[`${DATA}/0.0`] as [string, number, number];
    const whole = await fileBytes(corpusFile(NWB), off, len);
    const q = chunk(src(NWB), DATA, "0.0");
    const r1 = await call(base, q, { range: "bytes=10-99" });
    assert.equal(r1.status, 206);
    assert.equal(r1.headers["content-range"], `bytes 10-99/${len}`);
    assert.equal(r1.headers["content-length"], "90");
    assert.ok(r1.body.equals(whole.subarray(10, 100)));
    assert.equal(r1.headers["x-lindi-dtype"], "<i2", "decode headers on 206 too");
    const r2 = await call(base, q, { range: `bytes=${len - 5}-` });
    assert.equal(r2.status, 206);
    assert.ok(r2.body.equals(whole.subarray(len - 5)));
    const r3 = await call(base, q, { range: "bytes=-7" });
    assert.equal(r3.status, 206);
    assert.equal(r3.headers["content-range"], `bytes ${len - 7}-${len - 1}/${len}`);
    assert.ok(r3.body.equals(whole.subarray(len - 7)));
    const r4 = await call(base, q, { range: `bytes=0-${len + 1000}` });
    assert.equal(r4.status, 206, "an end past the chunk is clipped");
    assert.ok(r4.body.equals(whole));
    const bad = await call(base, q, { range: `bytes=${len}-` });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers["content-range"], `bytes */${len}`);
    assert.match(bad.headers["content-type"]!, /^application\/json/);
    assert.equal(bad.json<{ statusCode: number }>().statusCode, 416);
    const multi = await call(base, q, { range: "bytes=0-1,5-6" });
    assert.equal(multi.status, 200);
    assert.ok(multi.body.equals(whole));
    // inline chunk
    const inl = await call(base, chunk(src(NWB), "acquisition/ElectricalSeries/electrodes", "0"), { range: "bytes=2-5" });
    assert.equal(inl.status, 206);
    assert.ok(inl.body.equals(Buffer.from(decodeInlineBytes(refs["acquisition/ElectricalSeries/electrodes/0"] as string)).subarray(2, 6)));
  });

  test("never-written chunks: 404 with X-Lindi-Fill-Value; bad keys and groups: 400", async () => {
    const gz = "h5serv/test/test_files/dset_gzip.h5"; // chunked, never written
    const a = await call(base, chunk(src(gz), "dset1", "3.4"));
    assert.equal(a.status, 404, a.body.toString());
    assert.equal(a.headers["x-lindi-fill-value"], "0.0");
    assert.match(a.headers["content-type"]!, /^application\/json/);
    assert.match(a.json<{ message: string }>().message, /never written/);
    const pt = "PyTables/tables/tests/indexes_2_0.h5"; // 2 of 8 chunks written
    const { refs } = await indexOf(pt);
    const p = "_i_table1/var1/indicesLR";
    const written = Object.keys(refs).filter((k) => k.startsWith(`${p}/`) && CHUNK_KEY.test(k)).map((k) => k.slice(p.length + 1));
    assert.equal(written.length, 2);
    const missing = ["0", "1", "2", "3", "4", "5", "6", "7"].find((k) => !written.includes(k))!;
    const b = await call(base, chunk(src(pt), p, missing));
    assert.equal(b.status, 404);
    assert.equal(b.headers["x-lindi-fill-value"], "0");
    assert.equal((await call(base, chunk(src(pt), p, written[0]!))).status, 200);
    for (const [key, re] of [
      ["9.9", /outside the chunk grid/],
      ["0", /has 1 indices, the array 2/],
      ["a.b", /expected grid indices/],
    ] as const) {
      const e = await call(base, chunk(src(NWB), DATA, key));
      assert.equal(e.status, 400, key);
      assert.match(e.json<{ message: string }>().message, re);
    }
    assert.equal((await call(base, chunk(src(NWB), "acquisition", "0"))).status, 400, "a group");
    assert.equal((await call(base, chunk(src(NWB), "acquisition/none", "0"))).status, 404);
    assert.equal((await call(base, `/chunk?${src(NWB)}&path=${DATA}`)).status, 400, "key is required");
  });

  test("chunks of _EXTERNAL_ARRAY_LINK datasets come from the HDF5 chunk index", async () => {
    const { refs } = await indexOf(NWB);
    for (const key of ["0.0", "4.0", "8.0"]) {
      const [, off, len] = refs[`${DATA}/${key}`] as [string, number, number];
      const a = await call(base, chunk(src(NWB), DATA, key, "&chunksThreshold=0"));
      assert.equal(a.status, 200, a.body.toString());
      assert.equal(a.headers["x-lindi-filter-mask"], "0");
      assert.ok(a.body.equals(await fileBytes(corpusFile(NWB), off, len)), key);
      const r = await call(base, chunk(src(NWB), DATA, key, "&chunksThreshold=0"), { range: "bytes=100-199" });
      assert.equal(r.status, 206);
      assert.ok(r.body.equals(await fileBytes(corpusFile(NWB), off + 100, 100)));
    }
  });

  test("streamed: the first bytes arrive long before a slow origin finishes", async () => {
    const { refs } = await indexOf(NWB);
    const [, , len] = refs[`${DATA}/1.0`] as [string, number, number];
    assert.ok(len > 150_000);
    const drip = { bytes: 16 * 1024, intervalMs: 40 }; // ≥ 400 ms for the whole chunk
    origin.updateFaults({ drip });
    try {
      const t0 = performance.now();
      const res = await request(base + chunk(src(NWB), DATA, "1.0"));
      assert.equal(res.statusCode, 200);
      let first = -1;
      let got = 0;
      for await (const c of res.body) {
        if (first < 0) first = performance.now() - t0;
        got += (c as Buffer).length;
      }
      const total = performance.now() - t0;
      assert.equal(got, len);
      assert.ok(total >= 300, `total ${total.toFixed(0)} ms`);
      assert.ok(first < total / 2, `first bytes after ${first.toFixed(0)} ms of ${total.toFixed(0)} ms`);
    } finally {
      origin.updateFaults({ drip: undefined });
    }
  });

  test("an origin failing mid-body cuts the answer short (never a complete-looking body)", async () => {
    const { refs } = await indexOf(NWB);
    const [, , len] = refs[`${DATA}/2.0`] as [string, number, number];
    origin.updateFaults({ resetMidBody: { count: 10, afterFraction: 0.3 } });
    try {
      const res = await request(base + chunk(src(NWB), DATA, "2.0"));
      let got = 0;
      let failed = false;
      try {
        for await (const c of res.body) got += (c as Buffer).length;
      } catch {
        failed = true;
      }
      assert.ok(failed || got < len, `got ${got} of ${len} without an error`);
    } finally {
      origin.updateFaults({ resetMidBody: undefined });
    }
  });
});

describe("GET /slice through the shared chunk cache", () => {
  const NWB = "generated-nwb/ecephys.nwb";

  test("chunks are fetched with few merged range requests once, then served from the cache", async () => {
    await indexOf(NWB);
    app.lindiData.clearCaches();
    const q = `/slice?${src(NWB)}&path=/acquisition/ElectricalSeries/data&format=bin`;
    origin.resetStats();
    const first = await call(base, q);
    assert.equal(first.status, 200);
    const gets = origin.log.filter((l) => l.method === "GET" && l.range);
    assert.ok(gets.length >= 1 && gets.length <= 9, `${gets.length} range requests for 9 chunks`);
    origin.resetStats();
    const again = await call(base, q);
    assert.ok(again.body.equals(first.body));
    assert.equal(origin.log.filter((l) => l.method === "GET").length, 0, "no GET the second time");
    assert.ok(app.lindiData.chunkCache.stats.hits >= 9);
  });
});

describe("lindi= sources", () => {
  const NWB = "generated-nwb/ecephys.nwb";
  const DATA = "acquisition/ElectricalSeries/data";

  test(".lindi.json and .lindi.tar on a mirror answer /meta, /slice and /chunk as url= does", async () => {
    const { text, refs } = await indexOf(NWB);
    await writeFile(path.join(mirrorDir, "ecephys.lindi.json"), text);
    // the tar: same document, but one chunk moved into a blob member (a `./blobs/…` ref)
    const moved = `${DATA}/3.0`;
    const [, off, len] = refs[moved] as [string, number, number];
    const blob = await fileBytes(corpusFile(NWB), off, len);
    const tarPath = path.join(mirrorDir, "ecephys.lindi.tar");
    const w = await LindiTarWriter.create(tarPath, text);
    const member = await w.addBlob("chunk-3.0", blob);
    const doc = parsePythonJson(text) as { refs: Record<string, PyJson> };
    doc.refs[moved] = [`./${member}`, 0, len];
    w.setLindiJson(stringifyPython(doc as unknown as PyJson));
    await w.close();

    const viaUrl = src(NWB);
    const sources = [`lindi=${encodeURIComponent(mirror.url("ecephys.lindi.json"))}`, `lindi=${encodeURIComponent(mirror.url("ecephys.lindi.tar"))}`];
    const expectedMeta = (await call(base, `/meta?${viaUrl}&depth=32`)).json();
    const sel = "&path=/acquisition/ElectricalSeries/data&select=25000:45000:7,1:15:3&format=bin";
    const expectedSlice = await call(base, `/slice?${viaUrl}${sel}`);
    assert.equal(expectedSlice.status, 200);
    for (const s of sources) {
      const m = await call(base, `/meta?${s}&depth=32`);
      assert.equal(m.status, 200, `${s}: ${m.body.toString().slice(0, 300)}`);
      assert.deepEqual(m.json(), expectedMeta, s);
      const sl = await call(base, `/slice?${s}${sel}`);
      assert.equal(sl.status, 200, sl.body.toString());
      assert.ok(sl.body.equals(expectedSlice.body), `${s}: slice differs`);
      assert.equal(sl.headers["x-dtype"], "<i2");
      for (const key of ["0.0", "3.0"]) {
        const c = await call(base, chunk(s, DATA, key));
        assert.equal(c.status, 200, c.body.toString());
        const [, o, l] = refs[`${DATA}/${key}`] as [string, number, number];
        assert.ok(c.body.equals(await fileBytes(corpusFile(NWB), o, l)), `${s} ${key}`);
        const r = await call(base, chunk(s, DATA, key), { range: "bytes=5-24" });
        assert.equal(r.status, 206);
        assert.ok(r.body.equals(await fileBytes(corpusFile(NWB), o + 5, 20)));
      }
    }
    // the blob really is read from the tar (the corpus origin is not asked for that chunk)
    origin.resetStats();
    mirror.resetStats();
    const c = await call(base, chunk(sources[1]!, DATA, "3.0"));
    assert.equal(c.status, 200);
    assert.equal(origin.stats.gets, 0);
    assert.ok(mirror.stats.gets >= 1);
  });

  test("refs to hosts not allowed or to local files are refused (403); errors of the file itself", async () => {
    const { text } = await indexOf(NWB);
    const doc = parsePythonJson(text) as { refs: Record<string, PyJson>; templates?: Record<string, string> };
    assert.ok(doc.templates, "refs use templates");
    doc.refs[`${DATA}/0.0`] = ["http://example.org/secret.nwb", 0, 100];
    doc.refs[`${DATA}/1.0`] = [corpusFile(NWB), 0, 100];
    await writeFile(path.join(mirrorDir, "bad.lindi.json"), stringifyPython(doc as unknown as PyJson));
    const s = `lindi=${encodeURIComponent(mirror.url("bad.lindi.json"))}`;
    for (const key of ["0.0", "1.0"]) {
      const a = await call(base, `/slice?${s}&path=${DATA}&select=${key === "0.0" ? "0:10" : "10000:10010"}`);
      assert.equal(a.status, 403, a.body.toString());
      assert.match(a.json<{ message: string }>().message, /not allowed|does not read/);
      const c = await call(base, chunk(s, DATA, key));
      assert.equal(c.status, 403, c.body.toString());
    }
    // the other chunks still work
    const ok = await call(base, `/slice?${s}&path=${DATA}&select=20000:20010`);
    assert.equal(ok.status, 200, ok.body.toString());
    // a missing file, a file that is not LINDI, a host not allowed
    assert.equal((await call(base, `/meta?lindi=${encodeURIComponent(mirror.url("none.lindi.json"))}`)).status, 404);
    await writeFile(path.join(mirrorDir, "junk.lindi.json"), "{not json");
    const junk = await call(base, `/meta?lindi=${encodeURIComponent(mirror.url("junk.lindi.json"))}`);
    assert.equal(junk.status, 422, junk.body.toString());
    assert.match(junk.json<{ message: string }>().message, /not a LINDI file/);
    const hdf5 = await call(base, `/meta?lindi=${encodeURIComponent(origin.url(NWB))}`);
    assert.equal(hdf5.status, 422, "an HDF5 file is not a LINDI file");
    assert.equal((await call(base, `/meta?lindi=${encodeURIComponent("http://example.org/x.lindi.json")}`)).status, 403);
    assert.equal((await call(base, `/meta?lindi=${encodeURIComponent(mirror.url("bad.lindi.json"))}&chunksThreshold=0`)).status, 400);
  });

  test("a changed .lindi.json is picked up (revalidated after LINDI_PROBE_TTL_SECONDS)", async () => {
    const { text } = await indexOf(NWB);
    const file = path.join(mirrorDir, "changing.lindi.json");
    await writeFile(file, text);
    const s = `lindi=${encodeURIComponent(mirror.url("changing.lindi.json"))}`;
    const before = (await call(base, `/meta?${s}&path=/acquisition/ElectricalSeries`)).json<{ attributes: Record<string, unknown> }>();
    assert.equal(before.attributes.description, "raw voltage");
    await sleep(20); // a new mtime → a new ETag
    const doc = parsePythonJson(await readFile(file, "utf8")) as { refs: Record<string, Record<string, PyJson>> };
    doc.refs["acquisition/ElectricalSeries/.zattrs"]!.description = "edited";
    await writeFile(file, stringifyPython(doc as unknown as PyJson));
    const after = (await call(base, `/meta?${s}&path=/acquisition/ElectricalSeries`)).json<{ attributes: Record<string, unknown> }>();
    assert.equal(after.attributes.description, "edited");
  });
});
