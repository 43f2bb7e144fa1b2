/**
 * GET /meta end to end (real server + loopback origin serving the corpus):
 *
 *   - for every NWB file under generated-nwb/ and pynwb/, the whole tree
 *     (one request, depth=32) matches what h5wasm sees in the local file:
 *     names, kinds (group, dataset, soft link + target), dataset shapes and
 *     numeric dtypes, attribute names and values (references by target object);
 *     files LINDI cannot express answer 422;
 *   - depth: summaries at the last level, complete nodes above; paths with or
 *     without a leading slash, through soft links; 404 / 400 / 413;
 *   - storage classification: inline, chunked, contiguous, split, external.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import h5wasm, { type Attribute } from "h5wasm";
import type { ServiceConfig } from "../src/config.ts";
import { corpusFile, objectAddress, requireCorpus, withH5File, type H5File, type H5Module } from "./support/corpus.ts";
import type { RangeOrigin } from "./support/rangeOrigin.ts";
import { expectedDtype } from "./support/sliceCompare.ts";
import { startCorpusService, type CorpusService } from "./support/corpusService.ts";
import { testConfig as serviceTestConfig, call } from "./support/service.ts";

interface Node {
  name: string;
  path: string;
  kind: "group" | "dataset" | "link";
  target?: string;
  requestedPath?: string;
  attributes?: Record<string, unknown>;
  children?: Node[];
  shape?: number[];
  dtype?: string;
  fields?: { name: string; dtype: string }[];
  chunks?: number[] | null;
  filters?: unknown[] | null;
  compressor?: unknown;
  fillValue?: unknown;
  scalar?: boolean;
  storage?: { layout: string; chunkGrid: number[]; storedChunks: number; storedBytes: number; link?: { url: string; name: string } };
}

/** The test service, reusing source probes for the whole file (these tests do not change sources). */
const testConfig = (cacheDir: string, over: Partial<ServiceConfig> = {}): ServiceConfig =>
  serviceTestConfig(cacheDir, { probeTtlSeconds: 30, ...over });

let origin: RangeOrigin;
let base: string;
let service: CorpusService;

before(async () => {
  service = await startCorpusService("lindi-meta-test-", testConfig);
  ({ origin, base } = service);
});

after(() => service.close());

const meta = (rel: string, extra = "") => `/meta?url=${encodeURIComponent(origin.url(rel))}${extra}`;

// ---- h5wasm's view ------------------------------------------------------------------

const H5T_REFERENCE = 7;
const FIXED_NUMERIC = new Set([0, 1, 4, 8]); // integer, float, bitfield, enum

/** An attribute value as a flat list of comparable scalars (null when h5wasm cannot read it). */
function h5AttrValues(f: H5File, M: H5Module, attr: Attribute): unknown[] | null {
  let v: unknown;
  try {
    v = attr.value;
  } catch {
    return null;
  }
  const md = attr.metadata as { type: number };
  const flat: unknown[] = [];
  const walk = (x: unknown) => {
    if (Array.isArray(x)) x.forEach(walk);
    else if (ArrayBuffer.isView(x) && !(x instanceof DataView) && md.type !== H5T_REFERENCE) Array.from(x as unknown as ArrayLike<unknown>).forEach(walk);
    else flat.push(x);
  };
  walk(v);
  if (md.type === H5T_REFERENCE) {
    return flat.map((r) => {
      try {
        const target = (f as unknown as { dereference(r: unknown): { path?: string } | null }).dereference(r);
        return target?.path ? { address: objectAddress(f, M, target.path) } : null;
      } catch {
        return null;
      }
    });
  }
  return flat.map(normScalar);
}

function normScalar(x: unknown): unknown {
  if (typeof x === "bigint") return x >= BigInt(Number.MIN_SAFE_INTEGER) && x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x.toString();
  if (typeof x === "number") {
    if (Number.isNaN(x)) return "NaN";
    if (x === Infinity) return "Infinity";
    if (x === -Infinity) return "-Infinity";
    return x;
  }
  if (typeof x === "boolean") return x ? 1 : 0;
  return x;
}

/** Our attribute value as the same flat list (references → target object address). */
function ourAttrValues(f: H5File, M: H5Module, v: unknown): unknown[] {
  const flat: unknown[] = [];
  const walk = (x: unknown) => {
    if (Array.isArray(x)) x.forEach(walk);
    else flat.push(x);
  };
  walk(v);
  return flat.map((x) => {
    if (x && typeof x === "object" && "reference" in x) {
      try {
        return { address: objectAddress(f, M, (x as { reference: string }).reference) };
      } catch {
        return { address: -1 };
      }
    }
    return normScalar(x);
  });
}

function sameValues(a: unknown[], b: unknown[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i];
    if (x && typeof x === "object" && y && typeof y === "object") return (x as { address: number }).address === (y as { address: number }).address;
    if (typeof x === "number" && typeof y === "string") return String(x) === y; // big integers come as strings
    return x === y;
  });
}

interface MetaTally {
  nodes: number;
  datasets: number;
  links: number;
  attributes: number;
  attributeValues: number;
  problems: string[];
}

function compareTree(f: H5File, M: H5Module, rel: string, node: Node, tally: MetaTally): void {
  const problem = (m: string) => {
    if (tally.problems.length < 30) tally.problems.push(`${rel} ${node.path}: ${m}`);
  };
  tally.nodes++;
  const p = node.path;
  if (node.kind === "link") {
    tally.links++;
    const target = M.get_symbolic_link(f.file_id, p);
    if (!target) problem("a link in /meta, not a soft link in the file");
    else if (target !== node.target) problem(`link target ${node.target} ≠ ${target}`);
    return;
  }
  const type = M.get_type(f.file_id, p);
  if (node.kind === "group" && type !== M.H5G_GROUP) return problem(`group in /meta, type ${type} in the file`);
  if (node.kind === "dataset" && type !== M.H5G_DATASET) return problem(`dataset in /meta, type ${type} in the file`);
  // attributes
  const obj = f.get(p) as InstanceType<typeof h5wasm.Group> | InstanceType<typeof h5wasm.Dataset>;
  const theirs = obj.attrs;
  const ours = node.attributes ?? {};
  const a = Object.keys(ours).sort();
  const b = Object.keys(theirs).sort();
  if (JSON.stringify(a) !== JSON.stringify(b)) problem(`attribute names ${JSON.stringify(a)} ≠ ${JSON.stringify(b)}`);
  for (const name of a) {
    if (!theirs[name]) continue;
    tally.attributes++;
    const tv = h5AttrValues(f, M, theirs[name]!);
    if (tv === null || tv.some((x) => x === null)) continue; // unreadable by h5wasm: names only
    tally.attributeValues++;
    const ov = ourAttrValues(f, M, ours[name]);
    if (!sameValues(ov, tv)) problem(`attribute ${name}: ${JSON.stringify(ours[name])} ≠ ${JSON.stringify(tv, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v))}`);
  }
  if (node.kind === "dataset") {
    tally.datasets++;
    const md = M.get_dataset_metadata(f.file_id, p) as { shape: number[] | null; type: number };
    const shape = md.shape ?? [];
    const arrayType = (md as { array_type?: { shape?: number[] } }).array_type;
    const expected = arrayType?.shape ? [...shape, ...arrayType.shape] : shape; // subarray dtypes expand
    if (JSON.stringify(node.shape) !== JSON.stringify(expected)) problem(`shape ${JSON.stringify(node.shape)} ≠ ${JSON.stringify(expected)}`);
    if (FIXED_NUMERIC.has(md.type) && !arrayType && node.dtype !== expectedDtype(md as never)) problem(`dtype ${node.dtype} ≠ ${expectedDtype(md as never)}`);
    for (const k of ["dtype", "chunks", "filters", "compressor", "fillValue", "storage"] as const) if (!(k in node)) problem(`no ${k}`);
    return;
  }
  // children: every object h5wasm lists (named datatypes aside, which LINDI does not keep)
  const names = (M.get_names(f.file_id, p, false) as string[]).filter((n) => {
    const full = p === "/" ? `/${n}` : `${p}/${n}`;
    try {
      return M.get_symbolic_link(f.file_id, full) || M.get_type(f.file_id, full) !== M.H5G_TYPE;
    } catch {
      return true;
    }
  });
  const children = node.children ?? [];
  const cn = children.map((c) => c.name);
  if (JSON.stringify([...cn].sort()) !== JSON.stringify([...names].sort())) problem(`children ${JSON.stringify(cn)} ≠ ${JSON.stringify(names)}`);
  for (const c of children) compareTree(f, M, rel, c, tally);
}

function nwbFiles(): string[] {
  return execFileSync("find", ["generated-nwb", "pynwb", "-type", "f", "-name", "*.nwb"], { cwd: requireCorpus(), encoding: "utf8" })
    .trim()
    .split("\n")
    .filter(Boolean)
    .sort();
}

describe("GET /meta matches h5wasm", () => {
  test("the whole tree of every NWB file under generated-nwb/ and pynwb/", { timeout: 150_000 }, async (t) => {
    const tally: MetaTally = { nodes: 0, datasets: 0, links: 0, attributes: 0, attributeValues: 0, problems: [] };
    const notConvertible: string[] = [];
    const files = nwbFiles();
    assert.ok(files.length >= 35, `${files.length} NWB files`);
    // builds run two at a time; ask for all of them first
    await Promise.all(files.map((rel) => call(base, meta(rel, "&path=/nonexistent"))));
    for (const rel of files) {
      const a = await call(base, meta(rel, "&depth=32"));
      if (a.status === 422) {
        notConvertible.push(rel);
        continue;
      }
      assert.equal(a.status, 200, `${rel}: ${a.body.toString().slice(0, 300)}`);
      assert.match(String(a.headers["content-type"]), /^application\/json/);
      const root = a.json<Node>();
      assert.equal(root.path, "/");
      assert.equal(root.kind, "group");
      await withH5File(corpusFile(rel), (f, M) => compareTree(f, M, rel, root, tally));
    }
    t.diagnostic(
      `${files.length - notConvertible.length} files, ${tally.nodes} nodes, ${tally.datasets} datasets, ${tally.links} links, ` +
        `${tally.attributes} attributes (${tally.attributeValues} values compared); not convertible: ${notConvertible.join(", ")}`,
    );
    assert.deepEqual(tally.problems, []);
    assert.ok(notConvertible.every((r) => r.startsWith("generated-nwb/")), notConvertible.join(", "));
    assert.ok(files.length - notConvertible.length >= 33);
    assert.ok(tally.nodes >= 2000 && tally.datasets >= 1500 && tally.links >= 10 && tally.attributeValues >= 900, JSON.stringify({ ...tally, problems: undefined }));
  });
});

describe("GET /meta: depth, paths, errors, storage", () => {
  const NWB = "generated-nwb/ecephys.nwb";

  test("depth 1: the object complete, its children summaries; depth 2 expands them", async () => {
    const d1 = (await call(base, meta(NWB, "&path=acquisition/ElectricalSeries"))).json<Node>();
    assert.equal(d1.name, "ElectricalSeries");
    assert.equal(d1.path, "/acquisition/ElectricalSeries");
    assert.equal(d1.kind, "group");
    assert.equal(d1.attributes?.neurodata_type, "ElectricalSeries");
    const data = d1.children!.find((c) => c.name === "data")!;
    assert.deepEqual(Object.keys(data).sort(), ["chunks", "dtype", "filters", "kind", "name", "path", "shape"]);
    assert.deepEqual(data.shape, [90000, 16]);
    assert.equal(data.dtype, "<i2");
    assert.deepEqual(data.chunks, [10000, 16]);
    assert.deepEqual(data.filters, [{ elementsize: 2, id: "shuffle" }, { id: "zlib", level: 4 }]);
    const electrodes = d1.children!.find((c) => c.name === "electrodes")!;
    assert.equal(electrodes.attributes, undefined, "summaries have no attributes");

    const ds = (await call(base, meta(NWB, "&path=/acquisition/ElectricalSeries/data"))).json<Node>();
    assert.equal(ds.kind, "dataset");
    assert.equal(ds.compressor, null);
    assert.equal(ds.fillValue, 0);
    assert.equal(ds.attributes?.unit, "volts");
    assert.deepEqual(ds.storage, { layout: "chunked", chunkGrid: [9, 1], storedChunks: 9, storedBytes: ds.storage!.storedBytes });
    assert.ok(ds.storage!.storedBytes > 100_000);
    // references shown as target paths
    const el = (await call(base, meta(NWB, "&path=/acquisition/ElectricalSeries/electrodes"))).json<Node>();
    assert.deepEqual(el.attributes?.table, { reference: "/general/extracellular_ephys/electrodes" });
    assert.equal(el.storage?.layout, "inline");

    const d2 = (await call(base, meta(NWB, "&path=/acquisition&depth=2"))).json<Node>();
    const es = d2.children!.find((c) => c.name === "ElectricalSeries")!;
    assert.ok(es.attributes && es.children, "level 1 is complete at depth 2");
    assert.ok(es.children!.every((c) => c.attributes === undefined), "level 2 holds summaries");
  });

  test("compound dtype fields, scalars, soft links", async () => {
    const rel = "pynwb/_history/bef1be8eea/tests/back_compat/1.5.1_timeintervals_non_ndtype_tsref.nwb";
    const tree = (await call(base, meta(rel, "&depth=32"))).json<Node>();
    const all: Node[] = [];
    const walk = (n: Node) => {
      all.push(n);
      n.children?.forEach(walk);
    };
    walk(tree);
    const compound = all.find((n) => n.fields);
    assert.ok(compound, "a compound dataset");
    assert.match(compound.dtype!, /^\[\('/);
    assert.ok(compound.fields!.every((f) => typeof f.name === "string" && typeof f.dtype === "string"));
    const scalar = all.find((n) => n.scalar);
    assert.ok(scalar && JSON.stringify(scalar.shape) === "[]" && scalar.chunks === null);
    // soft links: listed as links; asking for one follows it
    // soft links: listed as links with their target; asking for one (or through one) follows it
    const shank = (await call(base, meta(NWB, "&path=/general/extracellular_ephys/shank0"))).json<Node>();
    const device = shank.children!.find((c) => c.name === "device")!;
    assert.deepEqual(device, { name: "device", path: "/general/extracellular_ephys/shank0/device", kind: "link", target: "/general/devices/probe-device" });
    const via = (await call(base, meta(NWB, "&path=general/extracellular_ephys/shank0/device"))).json<Node>();
    assert.equal(via.path, "/general/devices/probe-device");
    assert.equal(via.requestedPath, "/general/extracellular_ephys/shank0/device");
    assert.equal(via.kind, "group");
    assert.ok(via.attributes && "neurodata_type" in via.attributes);
  });

  test("errors: 404 path, 400 parameters, 422 not convertible — JSON", async () => {
    for (const [q, status] of [
      [meta(NWB, "&path=/nope"), 404],
      [meta(NWB, "&depth=0"), 400],
      [meta(NWB, "&depth=33"), 400],
      [meta(NWB, "&bogus=1"), 400],
      [`/meta`, 400],
      [meta("generated-nwb/compression.nwb"), 422],
    ] as const) {
      const a = await call(base, q);
      assert.equal(a.status, status, `${q}: ${a.body.toString()}`);
      assert.match(String(a.headers["content-type"]), /^application\/json/);
      assert.equal(a.json<{ statusCode: number }>().statusCode, status);
    }
  });

  test("storage: inline, chunked, contiguous, split, external", async () => {
    // chunksThreshold=0: every chunked dataset is an external array link; splitBytes small: contiguous data split
    const ext = (await call(base, meta(NWB, "&path=/acquisition/ElectricalSeries/data&chunksThreshold=0"))).json<Node>();
    assert.equal(ext.storage?.layout, "external");
    assert.equal(ext.storage?.link?.name, "acquisition/ElectricalSeries/data");
    assert.equal(ext.storage?.link?.url, origin.url(NWB), "the link URL (no version tag)");
    assert.deepEqual(ext.storage?.chunkGrid, [9, 1]);
    const layout = async (p: string, extra = "") => {
      const n = (await call(base, meta(NWB, `&path=${encodeURIComponent(p)}${extra}`))).json<Node>();
      return n.storage!;
    };
    assert.equal((await layout("/acquisition/ElectricalSeries/data")).layout, "chunked");
    assert.equal((await layout("/acquisition/ElectricalSeries/electrodes")).layout, "inline");
    const lfp = await layout("/processing/ecephys/LFP/LFP_series/data");
    assert.deepEqual(lfp, { layout: "contiguous", chunkGrid: [1, 1], storedChunks: 1, storedBytes: 48000 });
    // splitBytes=10000: the 48 000-byte contiguous dataset is cut into 5 pieces of 625 rows
    const split = await layout("/processing/ecephys/LFP/LFP_series/data", "&splitBytes=10000");
    assert.deepEqual(split, { layout: "split", chunkGrid: [5, 1], storedChunks: 5, storedBytes: 48000 });
    assert.equal((await layout("/acquisition/ElectricalSeries/data", "&splitBytes=10000")).layout, "chunked", "chunked data is never split");
  });
});
