import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { HttpClient } from "../src/hdf5/httpByteSource.ts";
import { stringifyPython, type PyJson } from "../src/lindi/pythonJson.ts";
import { encodeInlineBytes } from "../src/lindi/inlineBytes.ts";
import { openLindiFile, LindiFileError, expandTemplates, parseLindiDoc, type LindiDoc } from "../src/lindi/lindiFile.ts";
import { LindiTarWriter, LindiTarError } from "../src/lindi/tar/lindiTar.ts";
import { LindiDirWriter } from "../src/lindi/tar/lindiDir.ts";
import { startRangeOrigin, type RangeOrigin } from "./support/rangeOrigin.ts";
import { corpusDir } from "./support/corpus.ts";

const tmp = mkdtempSync(path.join(tmpdir(), "lindi-file-test-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const raw = new Uint8Array(4096).map((_, i) => (i * 13 + 5) & 0xff);
const rawPath = path.join(tmp, "raw.bin");
writeFileSync(rawPath, raw);
const blob = new Uint8Array(3000).map((_, i) => (i * 7) & 0xff);

function docWith(extra: Record<string, PyJson>, templates?: Record<string, string>): LindiDoc {
  const d: LindiDoc = { refs: { ".zgroup": { zarr_format: 2 }, ...extra }, version: 1 };
  if (templates) d.templates = templates;
  return d;
}

async function makeTar(file: string, doc: LindiDoc): Promise<void> {
  const w = await LindiTarWriter.create(file, stringifyPython({}));
  await w.addBlob("x/0", blob);
  w.setLindiJson(stringifyPython(doc as unknown as PyJson));
  await w.close();
}

describe("container detection (spec 9.1)", () => {
  test("JSON: refs, templates, inline bytes, http and local refs", async () => {
    const p = path.join(tmp, "a.lindi.json");
    const doc = docWith(
      {
        "x/.zarray": { shape: [1] },
        "x/0": encodeInlineBytes(new Uint8Array([1, 2, 200])),
        "y/0": ["{{u1}}", 100, 20],
        "z/0": [rawPath, 10, 30],
        "w/0": [pathToFileURL(rawPath).href, 0, 5],
        "rel/0": ["./blobs/rel/0", 0, 1],
      },
      { u1: "https://example.org/f.nwb" },
    );
    writeFileSync(p, stringifyPython(doc as unknown as PyJson));
    const f = await openLindiFile(p);
    try {
      assert.equal(f.container, "json");
      assert.deepEqual(f.doc.templates, { u1: "https://example.org/f.nwb" });
      assert.deepEqual(await f.getBytes("x/0"), new Uint8Array([1, 2, 200]));
      assert.deepEqual(f.getJson("x/.zarray"), { shape: [1] });
      assert.equal(await f.getBytes("nope"), undefined);
      assert.deepEqual(f.resolveRef(f.doc.refs["y/0"]!), { kind: "http", url: "https://example.org/f.nwb", offset: 100, length: 20 });
      assert.deepEqual(f.resolveRef(f.doc.refs["z/0"]!), { kind: "local", path: rawPath, offset: 10, length: 30 });
      assert.deepEqual(await f.getBytes("z/0"), raw.subarray(10, 40));
      assert.deepEqual(await f.getBytes("w/0"), raw.subarray(0, 5));
      assert.throws(() => f.resolveRef(f.doc.refs["rel/0"]!), /Cannot resolve relative path \.\/blobs\/rel\/0/);
      await assert.rejects(f.readRef([rawPath, 4090, 10]), /past the end/);
    } finally {
      await f.close();
    }
  });

  test("a JSON file shorter than 512 bytes", async () => {
    const p = path.join(tmp, "tiny.json");
    writeFileSync(p, '{"refs": {".zgroup": {"zarr_format": 2}}}');
    const f = await openLindiFile(p);
    assert.equal(f.container, "json");
    assert.deepEqual(f.doc.refs, { ".zgroup": { zarr_format: 2 } });
    await f.close();
  });

  test("tar: ./ refs resolve to member data offsets, bounds-checked", async () => {
    const p = path.join(tmp, "b.lindi.tar");
    await makeTar(p, docWith({ "x/0": ["./blobs/x/0", 100, 200], "bad/0": ["./blobs/x/0", 2900, 200], "gone/0": ["./blobs/none", 0, 1] }));
    const f = await openLindiFile(p);
    try {
      assert.equal(f.container, "tar");
      const rec = f.tar!.member("blobs/x/0")!;
      assert.deepEqual(f.resolveRef(f.doc.refs["x/0"]!), {
        kind: "tar",
        container: p,
        member: "blobs/x/0",
        offset: rec.d + 100,
        length: 200,
        memberOffset: 100,
      });
      assert.deepEqual(await f.getBytes("x/0"), blob.subarray(100, 300));
      assert.throws(() => f.resolveRef(f.doc.refs["bad/0"]!), LindiTarError);
      assert.throws(() => f.resolveRef(f.doc.refs["gone/0"]!), /no member/);
      assert.throws(() => f.resolveRef(["./blobs/../lindi.json", 0, 1]), /invalid/);
      // the same through the generic range reader (for ref stores)
      assert.deepEqual(await f.rangeReader()("./blobs/x/0", 0, 3), blob.subarray(0, 3));
    } finally {
      await f.close();
    }
  });

  test(".lindi.d: read, write, bounds and '..' checks (spec 11)", async () => {
    const dir = path.join(tmp, "c.lindi.d");
    const doc = docWith({ "x/0": ["./blobs/x/0", 10, 100], "big/0": ["./blobs/x/0", 0, 5000], "up/0": ["./blobs/../../raw.bin", 0, 1] });
    const w = await LindiDirWriter.create(dir, stringifyPython(doc as unknown as PyJson));
    assert.equal(await w.addBlob("x/0", blob), "./blobs/x/0");
    await w.close();
    assert.equal(readFileSync(path.join(dir, "lindi.json"), "utf8"), stringifyPython(doc as unknown as PyJson), "not padded");
    assert.deepEqual(new Uint8Array(readFileSync(path.join(dir, "blobs/x/0"))), blob);
    const f = await openLindiFile(dir);
    try {
      assert.equal(f.container, "dir");
      const loc = f.resolveRef(f.doc.refs["x/0"]!);
      assert.deepEqual(loc, { kind: "dir", container: dir, path: path.join(dir, "blobs/x/0"), offset: 10, length: 100 });
      assert.deepEqual(await f.getBytes("x/0"), blob.subarray(10, 110));
      await assert.rejects(f.getBytes("big/0"), /past the end/);
      assert.throws(() => f.resolveRef(f.doc.refs["up/0"]!), /invalid/);
    } finally {
      await f.close();
    }
  });

  test("errors: NUL bytes without ustar magic, GNU-format tar, invalid documents", async () => {
    const bin = path.join(tmp, "bin.dat");
    writeFileSync(bin, Buffer.concat([Buffer.from("{\"refs\": {}}"), Buffer.alloc(600)]));
    await assert.rejects(openLindiFile(bin), (e: unknown) => e instanceof LindiFileError && /NUL bytes/.test(e.message));
    const h5 = path.join(corpusDir, "generated-nwb/ecephys.nwb");
    if (existsSync(h5)) await assert.rejects(openLindiFile(h5), LindiFileError);

    if (spawnSync("tar", ["--version"]).status === 0) {
      // GNU tar's own format has magic "ustar  \0": byte 262 is a space, so not a .lindi.tar
      const src = path.join(tmp, "gnu-src");
      mkdirSync(src);
      writeFileSync(path.join(src, "lindi.json"), "{}");
      const gnu = path.join(tmp, "gnu.tar");
      assert.equal(spawnSync("tar", ["--format=gnu", "-cf", gnu, "-C", src, "lindi.json"]).status, 0);
      await assert.rejects(openLindiFile(gnu), /NUL bytes/);
    }

    const cases: [string, RegExp][] = [
      ['{"templates": {}}', /missing "refs"/],
      ['{"refs": {"a": ["http://x"]}}', /\[url, offset, length\]/],
      ['{"refs": {"a": ["http://x", 1.5, 2]}}', /\[url, offset, length\]/],
      ['{"refs": {"a": 3}}', /invalid value/],
      ['{"refs": {}, "templates": {"u1": 3}}', /template "u1" is not a string/],
      ["[1, 2]", /not a JSON object/],
      ["{oops", /not valid JSON/],
    ];
    for (const [text, re] of cases) {
      const p = path.join(tmp, "bad.json");
      writeFileSync(p, text);
      await assert.rejects(openLindiFile(p), re, text);
    }
    await assert.rejects(openLindiFile(path.join(tmp, "missing.json")), /ENOENT/);
  });

  test("templates: expansion, unknown names; unknown top-level keys kept", () => {
    assert.equal(expandTemplates("{{u1}}", { u1: "https://h/f" }), "https://h/f");
    assert.equal(expandTemplates("{{a}}/{{b}}.nwb", { a: "https://h", b: "f" }), "https://h/f.nwb");
    assert.throws(() => expandTemplates("{{u2}}", { u1: "x" }), /unknown template "u2"/);
    const d = parseLindiDoc('{"refs": {}, "extra": [1, 2], "version": 1}   ');
    assert.deepEqual((d as unknown as Record<string, PyJson>).extra, [1, 2]);
  });
});

describe("remote files through HTTP ranges (spec 9.1)", () => {
  let origin: RangeOrigin;
  let client: HttpClient;
  const served = path.join(tmp, "served");
  let tarDoc: LindiDoc;

  before(async () => {
    mkdirSync(served);
    copyFileSync(rawPath, path.join(served, "raw.bin"));
    origin = await startRangeOrigin({ root: served });
    client = new HttpClient({ retries: 0 });
    tarDoc = docWith({ "x/0": ["./blobs/x/0", 100, 200], "r/0": [origin.url("raw.bin"), 7, 9] });
    await makeTar(path.join(served, "t.lindi.tar"), tarDoc);
    const jdoc = docWith({ "r/0": ["{{u1}}", 1, 2] }, { u1: origin.url("raw.bin") });
    jdoc.generationMetadata = { note: "x".repeat(1000) };
    writeFileSync(path.join(served, "j.lindi.json"), stringifyPython(jdoc as unknown as PyJson));
  });
  after(async () => {
    await client.close();
    await origin.close();
  });

  test("remote tar: probe, bytes 0–511, entry, index, lindi.json — then one range per ref", async () => {
    origin.resetStats();
    const f = await openLindiFile(origin.url("t.lindi.tar"), { httpClient: client });
    try {
      assert.equal(f.container, "tar");
      assert.equal(f.remote, true);
      const idx = f.tar!.entry.index;
      const lj = f.tar!.member("lindi.json")!;
      assert.deepEqual(
        origin.log.map((e) => [e.method, e.range]),
        [
          ["HEAD", undefined],
          ["GET", "bytes=0-511"],
          ["GET", "bytes=512-1535"],
          ["GET", `bytes=${idx.d}-${idx.d + idx.s - 1}`],
          ["GET", `bytes=${lj.d}-${lj.d + lj.s - 1}`],
        ],
      );
      assert.deepEqual(f.doc, tarDoc);
      origin.resetStats();
      const rec = f.tar!.member("blobs/x/0")!;
      assert.deepEqual(await f.getBytes("x/0"), blob.subarray(100, 300));
      assert.deepEqual(origin.log.map((e) => [e.path, e.range]), [["t.lindi.tar", `bytes=${rec.d + 100}-${rec.d + 299}`]]);
      assert.deepEqual(await f.getBytes("r/0"), raw.subarray(7, 16));

      // portable document: ./ refs become [tar_url, member_d + off, len] (spec 10.5)
      const portable = f.portableDoc();
      assert.deepEqual(portable.refs["x/0"], [origin.url("t.lindi.tar"), rec.d + 100, 200]);
      assert.deepEqual(portable.refs["r/0"], tarDoc.refs["r/0"]);
    } finally {
      await f.close();
    }
  });

  test("remote JSON: probe, bytes 0–511, whole file; templates resolve to http ranges", async () => {
    origin.resetStats();
    const f = await openLindiFile(origin.url("j.lindi.json"), { httpClient: client });
    try {
      assert.equal(f.container, "json");
      const size = readFileSync(path.join(served, "j.lindi.json")).length;
      assert.deepEqual(
        origin.log.map((e) => [e.method, e.range]),
        [
          ["HEAD", undefined],
          ["GET", "bytes=0-511"],
          ["GET", `bytes=512-${size - 1}`],
        ],
      );
      assert.equal((f.doc.generationMetadata as { note: string }).note.length, 1000);
      assert.deepEqual(f.resolveRef(f.doc.refs["r/0"]!), { kind: "http", url: origin.url("raw.bin"), offset: 1, length: 2 });
      assert.deepEqual(await f.getBytes("r/0"), raw.subarray(1, 3));
    } finally {
      await f.close();
    }
  });

  test("a local tar's ./ refs cannot be exported", async () => {
    const f = await openLindiFile(path.join(served, "t.lindi.tar"));
    assert.throws(() => f.portableDoc(), /cannot export a local \.lindi\.tar/);
    await f.close();
  });
});
