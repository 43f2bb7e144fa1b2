import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { FileByteSource, MemoryByteSource } from "../src/hdf5/byteSource.ts";
import { HttpClient, openHttpSource } from "../src/hdf5/httpByteSource.ts";
import { stringifyPython } from "../src/lindi/pythonJson.ts";
import {
  LindiTarReader,
  LindiTarWriter,
  LindiTarError,
  allocatedSize,
  indexJson,
  entryJson,
  spacePadded,
  type TarIndexFile,
} from "../src/lindi/tar/lindiTar.ts";
import {
  buildHeader,
  headerChecksum,
  parseHeader,
  scanTar,
  splitName,
  TarNameTooLongError,
  type ScannedMember,
} from "../src/lindi/tar/ustar.ts";
import { startRangeOrigin, type RangeOrigin } from "./support/rangeOrigin.ts";

const tmp = mkdtempSync(path.join(tmpdir(), "lindi-tar-test-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const EMPTY_DOC = stringifyPython({ refs: { ".zgroup": { zarr_format: 2 } } });

function bytes(p: string): Uint8Array {
  return new Uint8Array(readFileSync(p));
}

function ascii(b: Uint8Array, off: number, len: number): string {
  return Buffer.from(b.subarray(off, off + len)).toString("latin1");
}

function allZero(b: Uint8Array): boolean {
  return b.every((x) => x === 0);
}

function hasCmd(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return r.status === 0;
}
const HAVE_TAR = hasCmd("tar", ["--version"]);
const HAVE_PY = hasCmd("python3", ["-c", "import tarfile"]);

/** `tar tvf` listing: [name, size] per member (GNU tar). */
function tarList(file: string): { name: string; size: number }[] {
  const r = spawnSync("tar", ["tvf", file], { encoding: "utf8" });
  assert.equal(r.status, 0, `tar tvf failed: ${r.stderr}`);
  return r.stdout
    .trim()
    .split("\n")
    .map((line) => {
      const m = /^(\S+)\s+(\S+)\s+(\d+)\s+\S+\s+\S+\s+(.*)$/.exec(line);
      assert.ok(m, `unexpected tar line ${line}`);
      return { name: m[4]!, size: Number(m[3]) };
    });
}

async function scanFile(file: string): Promise<{ members: ScannedMember[]; end: number; size: number }> {
  const b = bytes(file);
  const src = new MemoryByteSource(b);
  const r = await scanTar((o, l) => src.read(o, l), b.length);
  return { ...r, size: b.length };
}

describe("ustar headers (spec 10.1)", () => {
  test("byte layout of every field, checksum rule", () => {
    const h = buildHeader("blobs/a/0", 6872);
    assert.equal(h.length, 512);
    assert.equal(ascii(h, 0, 9), "blobs/a/0");
    assert.ok(allZero(h.subarray(9, 100)), "name NUL-padded");
    assert.equal(ascii(h, 100, 8), "0000644\0");
    assert.equal(ascii(h, 108, 8), "0000000\0");
    assert.equal(ascii(h, 116, 8), "0000000\0");
    assert.equal(ascii(h, 124, 12), "00000015330\0"); // 6872 octal
    assert.equal(ascii(h, 136, 12), "00000000000\0");
    assert.equal(h[156], 0x30);
    assert.ok(allZero(h.subarray(157, 257)), "linkname NUL");
    assert.equal(ascii(h, 257, 6), "ustar\0");
    assert.equal(ascii(h, 263, 2), "00");
    assert.ok(allZero(h.subarray(265, 512)), "uname/gname/dev/prefix/pad NUL");
    // checksum: 6 octal digits + NUL + space; sum with the field as spaces
    assert.equal(h[154], 0);
    assert.equal(h[155], 0x20);
    const stored = parseInt(ascii(h, 148, 6), 8);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    assert.equal(stored, sum);
    assert.equal(headerChecksum(h), sum);
    const p = parseHeader(h);
    assert.deepEqual([p.name, p.size, p.typeflag, p.mode], ["blobs/a/0", 6872, "0", 0o644]);
  });

  test("a corrupted header fails its checksum", () => {
    const h = buildHeader("x", 1);
    h[0] = 0x79;
    assert.throws(() => parseHeader(h), /checksum/);
  });

  test("identical to Python tarfile's USTAR headers (regular files, long names via prefix)", { skip: !HAVE_PY && "python3 not available" }, () => {
    const names = ["lindi.json", "blobs/acquisition/ts/data/0.0", `blobs/${"d".repeat(60)}/${"e".repeat(70)}/0.0.0`];
    const sizes = [8192, 6872, 123456789];
    const script = `
import tarfile, sys, json
out = []
for name, size in json.loads(sys.argv[1]):
    ti = tarfile.TarInfo(name); ti.size = size; ti.mode = 0o644; ti.mtime = 0; ti.uname = ""; ti.gname = ""
    out.append(ti.tobuf(format=tarfile.USTAR_FORMAT).hex())
print(json.dumps(out))`;
    const r = spawnSync("python3", ["-c", script, JSON.stringify(names.map((n, i) => [n, sizes[i]]))], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const hex: string[] = JSON.parse(r.stdout);
    names.forEach((n, i) => assert.equal(Buffer.from(buildHeader(n, sizes[i]!)).toString("hex"), hex[i], n));
  });

  test("names > 100 bytes use the prefix field; unsplittable names are refused", () => {
    const long = `blobs/${"a".repeat(120)}/x/0.0`;
    const { prefix, name } = splitName(long);
    assert.equal(Buffer.from(prefix).toString(), `blobs/${"a".repeat(120)}`);
    assert.equal(Buffer.from(name).toString(), "x/0.0");
    const h = buildHeader(long, 10);
    assert.equal(parseHeader(h).name, long);
    assert.throws(() => buildHeader(`blobs/${"b".repeat(101)}`, 1), TarNameTooLongError);
    assert.throws(() => buildHeader(`${"c".repeat(160)}/x`, 1), TarNameTooLongError);
  });
});

describe("fresh archive layout (spec 10.2)", () => {
  const file = path.join(tmp, "fresh.lindi.tar");
  let b: Uint8Array;
  before(async () => {
    const w = await LindiTarWriter.create(file, EMPTY_DOC);
    await w.close();
    b = bytes(file);
  });

  test("offsets 0 / 512 / 1536 / 2048 / 10240 / 10752, sizes, end marker", () => {
    assert.equal(b.length, 10752 + 8192 + 1024);
    const e = parseHeader(b.subarray(0, 512));
    assert.deepEqual([e.name, e.size], [".tar_entry.json", 1024]);
    const i = parseHeader(b.subarray(1536, 2048));
    assert.deepEqual([i.name, i.size], [".tar_index.json", 8192]);
    const l = parseHeader(b.subarray(10240, 10752));
    assert.deepEqual([l.name, l.size], ["lindi.json", 8192]);
    assert.ok(allZero(b.subarray(b.length - 1024)), "1024-byte NUL end marker");
  });

  test("entry JSON at 512–1535, exactly as lindi writes it, space-padded", () => {
    const expected = '{\n  "index": {\n    "d": 2048,\n    "n": ".tar_index.json",\n    "o": 1536,\n    "s": 8192\n  }\n}';
    const text = ascii(b, 512, 1024);
    assert.equal(text.trimEnd(), expected);
    assert.equal(text, expected + " ".repeat(1024 - expected.length));
  });

  test("index JSON lists the three members, space-padded to 8192", () => {
    const files: TarIndexFile[] = [
      { n: ".tar_entry.json", o: 0, d: 512, s: 1024 },
      { n: ".tar_index.json", o: 1536, d: 2048, s: 8192 },
      { n: "lindi.json", o: 10240, d: 10752, s: 8192 },
    ];
    assert.equal(ascii(b, 2048, 8192), indexJson(files) + " ".repeat(8192 - indexJson(files).length));
    assert.match(indexJson(files), /^\{\n  "files": \[\n    \{\n      "d": 512,\n      "n": ".tar_entry.json",\n      "o": 0,\n      "s": 1024\n    \},/);
  });

  test("lindi.json is the Python-formatted doc, space-padded", () => {
    assert.equal(ascii(b, 10752, 8192), EMPTY_DOC + " ".repeat(8192 - EMPTY_DOC.length));
  });

  test("system tar lists it; python tarfile reads it", { skip: !HAVE_TAR && "tar not available" }, () => {
    assert.deepEqual(tarList(file), [
      { name: ".tar_entry.json", size: 1024 },
      { name: ".tar_index.json", size: 8192 },
      { name: "lindi.json", size: 8192 },
    ]);
    const out = path.join(tmp, "fresh-x");
    mkdirSync(out);
    const r = spawnSync("tar", ["xf", file, "-C", out]);
    assert.equal(r.status, 0);
    assert.equal(readFileSync(path.join(out, "lindi.json"), "utf8").trimEnd(), EMPTY_DOC);
  });

  test("allocation rule: 8192 doubled until ≥ 4 × length", () => {
    assert.equal(allocatedSize(10), 8192);
    assert.equal(allocatedSize(2048), 8192);
    assert.equal(allocatedSize(2049), 16384);
    assert.equal(allocatedSize(100_000), 524288);
  });
});

describe("blobs, in-place updates, growth by trash + append (spec 10.4, 10.5)", () => {
  const file = path.join(tmp, "grow.lindi.tar");
  const blobData = (i: number) => new Uint8Array(1000 + i).map((_, j) => (i * 7 + j) & 0xff);
  const N = 130; // enough to push the index past 8192 bytes

  test("small update rewrites lindi.json in place", async () => {
    const w = await LindiTarWriter.create(file, EMPTY_DOC);
    const name = await w.addBlob("x/0", blobData(0));
    assert.equal(name, "blobs/x/0");
    assert.equal(await w.addBlob("x/0", blobData(1)), "blobs/x/0.v2");
    assert.equal(await w.addBlob("x/0", blobData(2)), "blobs/x/0.v3");
    const doc2 = stringifyPython({ refs: { ".zgroup": { zarr_format: 2 }, "x/0": ["./blobs/x/0", 0, 1000] } });
    w.setLindiJson(doc2);
    await w.close();
    const b = bytes(file);
    assert.equal(ascii(b, 10752, 8192), doc2 + " ".repeat(8192 - doc2.length), "same place, re-padded");
    const r = await LindiTarReader.open(await FileByteSource.open(file));
    assert.deepEqual(r.member("blobs/x/0"), { n: "blobs/x/0", o: 18944, d: 19456, s: 1000 });
    assert.deepEqual(await r.read("blobs/x/0.v2"), blobData(1));
    assert.equal(await r.readLindiJsonText(), doc2);
    await r.source.close?.();
  });

  test("many blobs and a big lindi.json: index moves, entry follows, old members trashed", async () => {
    const w = await LindiTarWriter.open(file);
    const refs: Record<string, [string, number, number]> = {};
    for (let i = 0; i < N; i++) {
      const data = blobData(i);
      const name = await w.addBlob(`grow/data/${i}`, data);
      refs[`grow/data/${i}`] = [`./${name}`, 0, data.length];
    }
    const big = stringifyPython({ refs: { ".zgroup": { zarr_format: 2 }, ...refs, pad: "p".repeat(9000) } });
    w.setLindiJson(big);
    await w.close();

    const b = bytes(file);
    const r = await LindiTarReader.open(new MemoryByteSource(b));
    // entry → the moved index, sized by the slack rule
    const idx = r.entry.index;
    assert.notEqual(idx.o, 1536);
    assert.equal(idx.d, idx.o + 512);
    // sized as lindi does: from the JSON without the index's own new record
    assert.equal(idx.s, allocatedSize(indexJson(r.index.files.filter((f) => f.n !== ".tar_index.json")).length));
    assert.ok(idx.s >= 32768);
    assert.equal(ascii(b, 512, 1024), entryJson(idx) + " ".repeat(1024 - entryJson(idx).length));
    // lindi.json appended anew with the slack rule, content intact
    const lj = r.member("lindi.json")!;
    assert.notEqual(lj.o, 10240);
    assert.equal(lj.s, allocatedSize(big.length));
    assert.equal(await r.readLindiJsonText(), big);
    for (let i = 0; i < N; i += 17) assert.deepEqual(await r.read(`blobs/grow/data/${i}`), blobData(i));

    // the headers: trash members renamed, data overwritten with '-', not in the index
    const scan = await scanFile(file);
    const trash = scan.members.filter((m) => m.name.startsWith(".trash/"));
    assert.deepEqual(trash.map((m) => m.name.replace(/\.[a-z]{10}$/, "")).sort(), [".trash/.tar_index.json", ".trash/lindi.json"]);
    for (const t of trash) {
      assert.match(t.name, /\.[a-z]{10}$/);
      assert.ok(b.subarray(t.d, t.d + t.size).every((x) => x === 0x2d), `${t.name} data is all '-'`);
      assert.equal(t.o, t.name.startsWith(".trash/lindi") ? 10240 : 1536);
      assert.ok(!r.index.files.some((f) => f.n === t.name || f.o === t.o));
    }
    // every live index record matches a header; the end marker closes the archive
    const live = scan.members.filter((m) => !m.name.startsWith(".trash/"));
    assert.deepEqual(
      live.map((m) => ({ n: m.name, o: m.o, d: m.d, s: m.size })).sort((x, y) => x.o - y.o),
      [...r.index.files].sort((x, y) => x.o - y.o),
    );
    assert.equal(scan.end + 1024, b.length);
    assert.ok(allZero(b.subarray(scan.end)));
  });

  test("the grown archive is valid for the system tar", { skip: !HAVE_TAR && "tar not available" }, async () => {
    const listed = tarList(file);
    const scan = await scanFile(file);
    assert.deepEqual(listed, scan.members.map((m) => ({ name: m.name, size: m.size })));
    assert.equal(listed.filter((m) => m.name.startsWith(".trash/")).length, 2);
  });

  test("replaceMember: same size in place, other size trash + append; trash()", async () => {
    const w = await LindiTarWriter.open(file);
    const before = w.member("blobs/x/0")!;
    await w.replaceMember("blobs/x/0", new Uint8Array(1000).fill(9));
    assert.deepEqual(w.member("blobs/x/0"), before);
    const moved = await w.replaceMember("blobs/x/0", new Uint8Array(5000).fill(8));
    assert.ok(moved.o > before.o);
    const trashName = await w.trash("blobs/x/0.v2");
    assert.match(trashName, /^\.trash\/blobs\/x\/0\.v2\.[a-z]{10}$/);
    await assert.rejects(w.trash(".tar_index.json"), LindiTarError);
    await assert.rejects(w.addMember("lindi.json", new Uint8Array(1)), LindiTarError);
    await w.close();
    const r = await LindiTarReader.open(new MemoryByteSource(bytes(file)));
    assert.deepEqual(await r.read("blobs/x/0"), new Uint8Array(5000).fill(8));
    assert.equal(r.has("blobs/x/0.v2"), false);
    const scan = await scanFile(file);
    assert.equal(scan.members.filter((m) => m.name.startsWith(".trash/")).length, 4);
  });

  test("a too-long blob name is refused before anything is written", async () => {
    const w = await LindiTarWriter.open(file);
    const size = w.size;
    await assert.rejects(w.addBlob("z".repeat(120), new Uint8Array(10)), TarNameTooLongError);
    const longOk = await w.addBlob(`${"q".repeat(120)}/0.0`, new Uint8Array(10).fill(3));
    await w.close();
    assert.ok(size < bytes(file).length);
    const r = await LindiTarReader.open(new MemoryByteSource(bytes(file)));
    assert.deepEqual(await r.read(longOk), new Uint8Array(10).fill(3));
    if (HAVE_TAR) assert.ok(tarList(file).some((m) => m.name === longOk));
  });
});

describe("reader validation and bounds (spec 10.2, 10.3)", () => {
  const file = path.join(tmp, "valid.lindi.tar");
  let good: Uint8Array;
  before(async () => {
    const w = await LindiTarWriter.create(file, EMPTY_DOC);
    await w.addBlob("a/0", new Uint8Array(2000).fill(1));
    await w.close();
    good = bytes(file);
  });

  function withIndex(files: TarIndexFile[]): Uint8Array {
    const b = good.slice();
    b.set(spacePadded(indexJson(files), 8192), 2048);
    return b;
  }
  function goodFiles(): TarIndexFile[] {
    return JSON.parse(ascii(good, 2048, 8192)).files;
  }

  test("bounds-checked member ranges", async () => {
    const r = await LindiTarReader.open(new MemoryByteSource(good));
    const rec = r.member("blobs/a/0")!;
    assert.deepEqual(r.locateRef("./blobs/a/0", 100, 50), { member: "blobs/a/0", offset: rec.d + 100, length: 50 });
    assert.deepEqual(r.locateRef("./blobs/a/0", 0, 2000), { member: "blobs/a/0", offset: rec.d, length: 2000 });
    assert.throws(() => r.locateRef("./blobs/a/0", 1, 2000), /past the end of member/);
    assert.throws(() => r.locateRef("./blobs/nope", 0, 1), /no member/);
    assert.throws(() => r.locateRef("./blobs/../lindi.json", 0, 1), /invalid/);
  });

  test("entry and index must agree", async () => {
    const files = goodFiles();
    const wrongSelf = files.map((f) => (f.n === ".tar_index.json" ? { ...f, s: 4096 } : f));
    await assert.rejects(LindiTarReader.open(new MemoryByteSource(withIndex(wrongSelf))), /does not match/);
    const wrongEntry = files.map((f) => (f.n === ".tar_entry.json" ? { ...f, s: 512 } : f));
    await assert.rejects(LindiTarReader.open(new MemoryByteSource(withIndex(wrongEntry))), /o 0, d 512, s 1024/);
    const noLindi = files.filter((f) => f.n !== "lindi.json");
    await assert.rejects(LindiTarReader.open(new MemoryByteSource(withIndex(noLindi))), /no lindi.json/);
    const pastEnd = files.map((f) => (f.n.startsWith("blobs/") ? { ...f, s: good.length } : f));
    await assert.rejects(LindiTarReader.open(new MemoryByteSource(withIndex(pastEnd))), /past the end/);
    const badD = files.map((f) => (f.n.startsWith("blobs/") ? { ...f, d: f.d + 1 } : f));
    await assert.rejects(LindiTarReader.open(new MemoryByteSource(withIndex(badD))), /header offset \+ 512/);
    const dup = [...files, files[files.length - 1]!];
    await assert.rejects(LindiTarReader.open(new MemoryByteSource(withIndex(dup))), /twice/);
  });

  test("a broken entry is reported", async () => {
    const b = good.slice();
    b.set(spacePadded('{"index": {"n": ".tar_index.json", "o": 1536, "d": 2048, "s": 99999999}}', 1024), 512);
    await assert.rejects(LindiTarReader.open(new MemoryByteSource(b)), /past the end/);
    const c = good.slice();
    c.set(spacePadded("{not json", 1024), 512);
    await assert.rejects(LindiTarReader.open(new MemoryByteSource(c)), LindiTarError);
    await assert.rejects(LindiTarReader.open(new MemoryByteSource(good.slice(0, 1000))), /too short/);
  });

  test("LindiTarWriter.open refuses non-tar files", async () => {
    const f = path.join(tmp, "not-a-tar");
    writeFileSync(f, Buffer.alloc(4096, 0x41));
    await assert.rejects(LindiTarWriter.open(f), /not a ustar archive/);
  });
});

describe("remote reading through HTTP ranges (spec 10.3)", () => {
  let origin: RangeOrigin;
  let client: HttpClient;
  const dir = path.join(tmp, "served");
  const blob = new Uint8Array(50_000).map((_, i) => (i * 31) & 0xff);
  before(async () => {
    mkdirSync(dir);
    const file = path.join(dir, "r.lindi.tar");
    const w = await LindiTarWriter.create(file, EMPTY_DOC);
    await w.addBlob("big/0", blob);
    w.setLindiJson(stringifyPython({ refs: { ".zgroup": { zarr_format: 2 }, "big/0": ["./blobs/big/0", 0, blob.length] } }));
    await w.close();
    copyFileSync(file, path.join(dir, "copy.lindi.tar"));
    origin = await startRangeOrigin({ root: dir });
    client = new HttpClient({ retries: 0 });
  });
  after(async () => {
    await client.close();
    await origin.close();
  });

  test("entry, index, lindi.json: one range request each; a blob slice: one more", async () => {
    const src = await openHttpSource(origin.url("r.lindi.tar"), client);
    origin.resetStats();
    const r = await LindiTarReader.open(src);
    assert.deepEqual(
      origin.log.map((e) => [e.method, e.range]),
      [
        ["GET", "bytes=512-1535"],
        ["GET", `bytes=${r.entry.index.d}-${r.entry.index.d + r.entry.index.s - 1}`],
      ],
    );
    const lj = r.member("lindi.json")!;
    const doc = (await r.readLindiJson()) as { refs: Record<string, unknown> };
    assert.deepEqual(doc.refs["big/0"], ["./blobs/big/0", 0, blob.length]);
    assert.deepEqual(origin.log[2]!.range, `bytes=${lj.d}-${lj.d + lj.s - 1}`);
    const loc = r.locateRef("./blobs/big/0", 1000, 2000);
    const got = await src.read(loc.offset, loc.length);
    assert.deepEqual(got, blob.subarray(1000, 3000));
    assert.equal(origin.stats.requests, 4);
    assert.deepEqual(origin.log[3]!.range, `bytes=${loc.offset}-${loc.offset + 1999}`);
    await src.close();
  });
});
