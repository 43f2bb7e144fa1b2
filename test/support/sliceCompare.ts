/**
 * Compares readSlice results with what h5wasm reads from the same HDF5 file.
 *
 *   fixed-size data (numbers, bools, enums): raw hyperslab bytes from h5wasm
 *     (memory type = file type made little-endian) vs the result's typed array
 *     bytes — exact, NaN payloads and float16 bits included;
 *   |S: h5wasm's strings (cut at the first NUL) vs ours;
 *   vlen strings: h5wasm's strings;
 *   references: the object h5wasm dereferences to vs the `_REFERENCE` path
 *     (same object header address, so any hard link to it matches);
 *   compound: row by row, field by field (references as above).
 */
import h5wasm from "h5wasm";
import { numpyDtype } from "../../src/hdf5/dtype.ts";
import { H5T } from "../../src/hdf5/dtype.ts";
import type { SliceResult } from "../../src/slices/readSlice.ts";
import type { Selection } from "../../src/slices/selection.ts";
import { objectAddress, type H5File, type H5Module } from "./corpus.ts";
import { seededRandom } from "./rangeOrigin.ts";

type Metadata = ReturnType<H5Module["get_dataset_metadata"]>;


/** h5wasm hyperslab parameters of a selection (index dims as count 1). */
export function hyperslab(sel: Selection): { count: bigint[]; offset: bigint[]; strides: bigint[] } {
  return {
    count: sel.dims.map((d) => BigInt(d.kind === "index" ? 1 : d.count)),
    offset: sel.dims.map((d) => BigInt(d.kind === "index" ? d.index : d.start)),
    strides: sel.dims.map((d) => BigInt(d.kind === "index" ? 1 : d.step)),
  };
}

/** h5wasm `Dataset.slice` ranges of a selection. */
function ranges(sel: Selection): [number, number, number][] {
  return sel.dims.map((d) => (d.kind === "index" ? [d.index, d.index + 1, 1] : [d.start, d.stop, d.step]));
}

function isFixedNumeric(md: Metadata): boolean {
  return ([H5T.INTEGER, H5T.FLOAT, H5T.BITFIELD, H5T.ENUM] as number[]).includes(md.type);
}

/** Raw bytes of a hyperslab (little-endian memory type), or null when h5wasm cannot read it. */
export function readRawSelection(f: H5File, M: H5Module, path: string, md: Metadata, sel: Selection, scalar: boolean): Uint8Array | null {
  const nbytes = md.size * sel.count;
  const ptr = M._malloc(Math.max(1, nbytes));
  try {
    if (scalar || sel.dims.length === 0) M.get_dataset_data(f.file_id, path, null, null, null, BigInt(ptr));
    else {
      const h = hyperslab(sel);
      M.get_dataset_data(f.file_id, path, h.count, h.offset, h.strides, BigInt(ptr));
    }
    return M.HEAPU8.slice(ptr, ptr + nbytes);
  } catch {
    return null;
  } finally {
    M._free(ptr);
  }
}

function bytesOf(data: ArrayBufferView): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function refTargetAddress(f: H5File, M: H5Module, ref: unknown): number | null {
  try {
    const ent = (f as unknown as { dereference(r: unknown): { path?: string; source_dataset?: { path: string } } | null }).dereference(ref);
    // object references give the object, region references a DatasetRegion
    const p = ent?.path ?? ent?.source_dataset?.path;
    return p ? objectAddress(f, M, p) : null;
  } catch {
    return null;
  }
}

function ourRefAddress(f: H5File, M: H5Module, v: unknown): number | null {
  const r = (v as { _REFERENCE?: { path?: unknown } } | null)?._REFERENCE;
  if (!r || typeof r.path !== "string") return null;
  try {
    return objectAddress(f, M, r.path);
  } catch {
    return null;
  }
}

function numEq(a: unknown, b: unknown): boolean {
  if (typeof a === "bigint" || typeof b === "bigint") {
    try {
      return BigInt(a as bigint | number) === BigInt(b as bigint | number);
    } catch {
      return false;
    }
  }
  if (typeof a === "number" && typeof b === "number") return a === b || (Number.isNaN(a) && Number.isNaN(b));
  if (typeof a === "boolean" || typeof b === "boolean") return Number(a) === Number(b);
  return false;
}

function valueEq(f: H5File, M: H5Module, ours: unknown, theirs: unknown, member: Metadata | undefined): string | null {
  if (member?.type === H5T.REFERENCE) {
    const a = ourRefAddress(f, M, ours);
    const b = refTargetAddress(f, M, theirs);
    return a !== null && a === b ? null : `reference ${JSON.stringify(ours)} → ${a}, h5wasm → ${b}`;
  }
  if (!Array.isArray(ours) && ArrayBuffer.isView(theirs) && !(theirs instanceof DataView)) {
    const t = Array.from(theirs as unknown as ArrayLike<unknown>);
    if (t.length === 1) return valueEq(f, M, ours, t[0], member);
  }
  if (Array.isArray(theirs) || (ArrayBuffer.isView(theirs) && !(theirs instanceof DataView))) {
    // vlen sequences
    const t = Array.from(theirs as ArrayLike<unknown>);
    if (!Array.isArray(ours) || ours.length !== t.length) return `${JSON.stringify(ours)} ≠ [${t.join(",")}]`;
    for (let i = 0; i < t.length; i++) {
      const q = valueEq(f, M, ours[i], t[i], undefined);
      if (q) return `[${i}] ${q}`;
    }
    return null;
  }
  if (typeof theirs === "string") {
    const o = typeof ours === "string" ? ours.split("\0")[0] : ours;
    return o === theirs ? null : `${JSON.stringify(ours)} ≠ ${JSON.stringify(theirs)}`;
  }
  if (numEq(ours, theirs)) return null;
  return `${String(ours)} ≠ ${String(theirs)}`;
}

/** The numpy dtype h5py would report (`|O` for vlen/references, `|V…` for compound). */
export function expectedDtype(md: Metadata): string {
  return numpyDtype(md as never).str;
}

/**
 * Mismatches between `res` and h5wasm's reading of the same selection
 * (empty when equal). `scalar`: the dataset has shape [].
 */
export function compareWithH5(f: H5File, M: H5Module, path: string, res: SliceResult, sel: Selection): string[] {
  const problems: string[] = [];
  const md = M.get_dataset_metadata(f.file_id, path) as Metadata;
  const scalar = (md.shape ?? []).length === 0;
  if (JSON.stringify(res.shape) !== JSON.stringify(sel.shape)) problems.push(`shape ${JSON.stringify(res.shape)} ≠ ${JSON.stringify(sel.shape)}`);
  const n = sel.count;
  const len = (res.data as { length: number }).length;
  if (len !== n) {
    problems.push(`${len} elements, expected ${n}`);
    return problems;
  }
  if (n === 0) return problems;
  const exp = expectedDtype(md);

  if (isFixedNumeric(md)) {
    if (res.dtype !== exp) problems.push(`dtype ${res.dtype} ≠ ${exp}`);
    const raw = readRawSelection(f, M, path, md, sel, scalar);
    if (!raw) return problems; // h5wasm cannot read it (missing filter plugin): nothing to compare
    const ours = bytesOf(res.data as ArrayBufferView);
    if (ours.length !== raw.length) problems.push(`${ours.length} bytes, h5wasm ${raw.length}`);
    else {
      for (let i = 0; i < raw.length; i++) {
        if (ours[i] !== raw[i]) {
          const at = Math.floor(i / md.size);
          problems.push(`element ${at} differs (byte ${i}: ${ours[i]} vs ${raw[i]})`);
          break;
        }
      }
    }
    return problems;
  }

  if (md.type === H5T.STRING && !md.vlen) {
    // lindi keeps h5py's view: NUL-padded (space-padded strings arrive without the spaces);
    // a scalar's |S size may be the value's length (numpy scalar) rather than the type's
    const m = /^\|S(\d+)$/.exec(res.dtype);
    if (!m || (scalar ? Number(m[1]) > md.size : Number(m[1]) !== md.size)) problems.push(`dtype ${res.dtype} ≠ ${exp}`);
    const raw = readRawSelection(f, M, path, md, sel, scalar);
    if (!raw || !res.bytes || !m) return problems;
    const size = Number(m[1]);
    const spacepad = (md as { strpad?: number }).strpad === 2;
    const trim = (b: Uint8Array) => {
      let end = b.length;
      while (end > 0 && (b[end - 1] === 0 || (spacepad && b[end - 1] === 0x20))) end--;
      return b.subarray(0, end);
    };
    for (let i = 0; i < n; i++) {
      const a = trim(res.bytes.subarray(i * size, (i + 1) * size));
      const b = trim(raw.subarray(i * md.size, (i + 1) * md.size));
      if (Buffer.compare(a, b) !== 0) {
        problems.push(`element ${i}: bytes ${Buffer.from(a).toString("hex")} ≠ ${Buffer.from(b).toString("hex")}`);
        break;
      }
      // the string is the bytes as UTF-8 when valid, else one character per byte
      let expected: string;
      try {
        expected = new TextDecoder("utf-8", { fatal: true }).decode(a);
      } catch {
        expected = Buffer.from(a).toString("latin1");
      }
      if ((res.data as string[])[i] !== expected) {
        problems.push(`element ${i}: string ${JSON.stringify((res.data as string[])[i])} ≠ ${JSON.stringify(expected)}`);
        break;
      }
    }
    return problems;
  }

  const ds = f.get(path) as InstanceType<typeof h5wasm.Dataset>;
  let theirs: unknown;
  try {
    theirs = scalar ? ds.value : ds.slice(ranges(sel) as never);
  } catch {
    return problems; // unreadable through h5wasm
  }
  const theirList: unknown[] = scalar ? [theirs] : Array.isArray(theirs) ? theirs : Array.from(theirs as ArrayLike<unknown>);
  const ours = res.data as unknown[];

  if (md.type === H5T.STRING) {
    if (md.vlen) {
      const okDtype = scalar ? /^<U\d+$/.test(res.dtype) : res.dtype === "|O";
      if (!okDtype) problems.push(`dtype ${res.dtype} for a vlen string`);
    }
  } else if (md.type === H5T.REFERENCE) {
    if (res.dtype !== "|O") problems.push(`dtype ${res.dtype} for references`);
  } else if (md.type === H5T.COMPOUND) {
    if (!res.fields) problems.push(`compound without fields (dtype ${res.dtype})`);
  }
  const members = md.type === H5T.COMPOUND ? ((md.compound_type?.members ?? []) as unknown as (Metadata & { offset: number })[]) : undefined;
  // h5wasm drops reference members of compounds: read their raw 8-byte object addresses instead
  const rawRows = members?.some((m) => m.type === H5T.REFERENCE) ? readRawSelection(f, M, path, md, sel, scalar) : null;
  for (let i = 0; i < n; i++) {
    const o = ours[i];
    const t = theirList[i];
    let p: string | null = null;
    if (members) {
      const row = o && typeof o === "object" ? Object.values(o as Record<string, unknown>) : [];
      const trow = Array.isArray(t) ? t : [];
      if (row.length !== members.length || trow.length !== members.length) p = `row of ${row.length} fields, h5wasm ${trow.length}`;
      else {
        for (let k = 0; k < members.length && !p; k++) {
          const m = members[k]!;
          if (m.type === H5T.REFERENCE && m.size === 8 && rawRows) {
            const at = i * md.size + m.offset;
            const addr = Number(new DataView(rawRows.buffer, rawRows.byteOffset + at, 8).getBigUint64(0, true));
            const a = ourRefAddress(f, M, row[k]);
            if (a !== addr) p = `field ${k}: reference ${JSON.stringify(row[k])} → ${a}, file → ${addr}`;
            continue;
          }
          const q = valueEq(f, M, row[k], trow[k], m);
          if (q) p = `field ${k}: ${q}`;
        }
      }
    } else {
      p = valueEq(f, M, o, t, md);
    }
    if (p) {
      problems.push(`element ${i}: ${p}`);
      if (problems.length > 5) break;
    }
  }
  return problems;
}

/** Deterministic RNG (the range origin's mulberry32), for the random selections below. */
export { seededRandom };

/**
 * A random selection text for `shape` in the h5grove syntax, mixing indices,
 * ranges, steps, negative numbers and omitted trailing dimensions. Never empty
 * along a dimension of non-zero size.
 */
export function randomSelection(shape: readonly number[], rnd: () => number): string {
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const entries: string[] = [];
  const upto = shape.length === 0 ? 0 : int(Math.max(1, shape.length - 1), shape.length);
  for (let i = 0; i < upto; i++) {
    const n = shape[i]!;
    if (n === 0) {
      entries.push(":");
      continue;
    }
    const kind = int(0, 5);
    const a = int(0, n - 1);
    const b = int(a + 1, n);
    const neg = rnd() < 0.3;
    switch (kind) {
      case 0:
        entries.push(":");
        break;
      case 1:
        entries.push(String(neg ? a - n : a));
        break;
      case 2:
        entries.push(`${neg ? a - n : a}:${b}`);
        break;
      case 3:
        entries.push(`${a}:${b}:${int(1, Math.max(1, Math.ceil((b - a) / 2)))}`);
        break;
      case 4:
        entries.push(`:${neg && b < n ? b - n : b}`);
        break;
      default:
        entries.push(`::${int(1, Math.max(1, Math.ceil(n / 3)))}`);
    }
  }
  return entries.join(",");
}
