import type { Metadata } from "h5wasm";
import type { H5Module } from "./h5wasmTypes.ts";
import { elementCount, numpyDtype, type NumpyDtype, H5T } from "./dtype.ts";
import { readAttributeElements, readDatasetBytes, readDatasetElements, toNullPadded, type H5Ref, type H5Value } from "./values.ts";

/** An attribute as read: its datatype and its elements (flat, row-major). */
export interface H5Attr {
  name: string;
  md: Metadata;
  dtype: NumpyDtype;
  /** null for a null dataspace (h5py.Empty). */
  shape: number[] | null;
  elements: H5Value[] | null;
  /** Why the value could not be read, when it could not. */
  error?: string;
  /** h5wasm failed to read it (the type itself was understood). */
  readFailed?: boolean;
}

/** What LINDI inlines of a dataset, read with h5wasm (filters already undone). */
export type InlineValues =
  | { kind: "bytes"; bytes: Uint8Array } // raw, little-endian (h5wasm converts)
  | { kind: "elements"; elements: H5Value[] }
  | { kind: "error"; message: string; /** h5wasm failed to read a type LINDI can express */ readFailed: boolean };

export type H5Node =
  | { kind: "group"; path: string; /** object header address (relative, as HDF5 reports it) */ address: number; attrs: H5Attr[] }
  | { kind: "soft-link"; path: string; target: string; dangling: boolean }
  | { kind: "external-link"; path: string; file: string; target: string }
  | {
      kind: "dataset";
      path: string;
      /** Object header address as HDF5 reports it (relative to the base address). */
      address: number;
      md: Metadata;
      dtype: NumpyDtype;
      /** null = null dataspace; [] = scalar. */
      shape: number[] | null;
      chunks: number[] | null;
      attrs: H5Attr[];
      inline: InlineValues | null;
    }
  | { kind: "unsupported"; path: string; reason: string };

export interface H5Model {
  nodes: H5Node[];
  /** The root group's `object_id` attribute (NWB files have one), else null. */
  rootObjectId: H5Value | null;
  /** Each referenced object's `object_id` attribute, by path. */
  objectIds: Map<string, H5Value | null>;
}

/**
 * Whether LINDI stores a dataset's values inline (spec §5.4): scalars always;
 * int/uint/float when 0 < elements < 1000; every other kind always.
 */
export function isInlineDataset(dtype: NumpyDtype, shape: number[]): boolean {
  if (shape.length === 0) return true;
  if (dtype.kind === "i" || dtype.kind === "u" || dtype.kind === "f") {
    const n = elementCount(shape);
    return n > 0 && n < 1000;
  }
  return true;
}

/** Joins a child name to a group path ("/" is the root). */
export function childPath(parent: string, name: string): string {
  return parent === "/" ? `/${name}` : `${parent}/${name}`;
}

function readAddress(m: H5Module, fileId: bigint, path: string): number {
  const ref = Uint8Array.from(m.create_object_reference(fileId, path));
  const v = new DataView(ref.buffer).getBigUint64(0, true);
  return Number(v);
}

function errorMessage(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  // HDF5's diagnostic stack is long; its first line names the failing call.
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  const detail = lines.find((l) => l.startsWith("#000")) ?? lines[0] ?? "unknown error";
  return detail.replace(/^#000: \S+ line \d+ in /, "");
}

/** Types whose elements are plain fixed-size bytes (no pointers, no nesting). */
export function isFixedSizeSimple(md: Metadata): boolean {
  return md.type === H5T.INTEGER || md.type === H5T.FLOAT || md.type === H5T.BITFIELD ||
    md.type === H5T.ENUM || (md.type === H5T.STRING && !md.vlen);
}

export function isVlenString(md: Metadata): boolean {
  return md.type === H5T.STRING && md.vlen;
}

/**
 * Raw little-endian bytes as h5py would hold them: fixed strings NUL-padded,
 * long doubles narrower than numpy's 16-byte longdouble zero-extended.
 */
export function normalizeRawBytes(bytes: Uint8Array, md: Metadata, itemsize: number): Uint8Array {
  const n = md.size > 0 ? bytes.length / md.size : 0;
  if (md.type === H5T.STRING && md.strpad !== 1) {
    for (let i = 0; i < n; i++) bytes.set(toNullPadded(bytes.subarray(i * md.size, (i + 1) * md.size), md.strpad), i * md.size);
    return bytes;
  }
  if (md.type === H5T.FLOAT && itemsize > md.size) {
    const out = new Uint8Array(n * itemsize);
    for (let i = 0; i < n; i++) out.set(bytes.subarray(i * md.size, (i + 1) * md.size), i * itemsize);
    return out;
  }
  return bytes;
}

/**
 * Phase A: walks an open HDF5 file with h5wasm, depth first from the root,
 * following hard links, recording soft/external links without following
 * them, reading attributes and the values of the datasets LINDI inlines.
 */
export function walkFile(m: H5Module, fileId: bigint): H5Model {
  const nodes: H5Node[] = [];
  const objectIds = new Map<string, H5Value | null>();

  const readObjectId = (path: string): H5Value | null => {
    if (objectIds.has(path)) return objectIds.get(path) ?? null;
    let value: H5Value | null = null;
    try {
      const names = m.get_attribute_names(fileId, path) as string[];
      if (names.includes("object_id")) {
        const md = m.get_attribute_metadata(fileId, path, "object_id");
        const els = readAttributeElements(m, fileId, path, "object_id", md, resolveRef);
        value = md.shape && md.shape.length === 0 ? (els[0] ?? null) : els;
      }
    } catch {
      value = null;
    }
    objectIds.set(path, value);
    return value;
  };

  const refNames = new Map<string, string | null>();
  function resolveRef(bytes: Uint8Array, region: boolean): H5Ref {
    const key = Array.from(bytes).join(",");
    let path = refNames.get(key);
    if (path === undefined) {
      const isNull = bytes.every((b) => b === 0);
      path = isNull ? null : (m.get_referenced_name(fileId, bytes, !region) as string);
      refNames.set(key, path);
    }
    if (path !== null) readObjectId(path);
    return { ref: true, path, region };
  }

  const readAttrs = (path: string): H5Attr[] => {
    const names = m.get_attribute_names(fileId, path) as string[];
    return names.map((name) => {
      let md: Metadata;
      try {
        md = m.get_attribute_metadata(fileId, path, name);
      } catch (e) {
        return { name, md: {} as Metadata, dtype: numpyDtype({ type: -1, size: 0 } as Metadata), shape: null, elements: null, error: errorMessage(e) };
      }
      const dtype = numpyDtype(md);
      const attr: H5Attr = { name, md, dtype, shape: md.shape, elements: null };
      try {
        attr.elements = readAttributeElements(m, fileId, path, name, md, resolveRef);
      } catch (e) {
        attr.error = errorMessage(e);
        attr.readFailed = true;
      }
      return attr;
    });
  };

  const readInline = (path: string, md: Metadata, dtype: NumpyDtype): InlineValues => {
    try {
      // Types LINDI cannot express are not read at all (an array type can be huge).
      const unsupported = dtype.unsupported ?? (dtype.kind === "c" ? "complex numbers"
        : md.type === H5T.ARRAY ? "array datatypes" : md.type === H5T.OPAQUE ? "opaque datatypes"
        : md.type === H5T.VLEN ? "variable-length sequences" : null);
      if (unsupported) return { kind: "error", message: `${unsupported}: not supported by LINDI`, readFailed: false };
      if (isFixedSizeSimple(md)) {
        // HDF5 2.0 (h5wasm) restores N-bit packed data wrongly: leave it to our own decoder
        if ((m.get_dataset_filters(fileId, path) as { id: number }[]).some((f) => f.id === 5)) {
          return { kind: "error", message: "N-bit filtered data is decoded by our own reader", readFailed: true };
        }
        return { kind: "bytes", bytes: normalizeRawBytes(readDatasetBytes(m, fileId, path, md), md, dtype.itemsize) };
      }
      return { kind: "elements", elements: readDatasetElements(m, fileId, path, md, resolveRef) };
    } catch (e) {
      return { kind: "error", message: `cannot read values: ${errorMessage(e)}`, readFailed: true };
    }
  };

  const visitDataset = (path: string) => {
    const md = m.get_dataset_metadata(fileId, path);
    const dtype = numpyDtype(md);
    const shape = md.shape;
    const inline = shape !== null && isInlineDataset(dtype, shape) && elementCount(shape) > 0
      ? readInline(path, md, dtype)
      : null;
    nodes.push({
      kind: "dataset",
      path,
      address: readAddress(m, fileId, path),
      md,
      dtype,
      shape,
      chunks: md.chunks,
      attrs: readAttrs(path),
      inline,
    });
  };

  const visitGroup = (path: string, address: number, ancestors: Set<number>) => {
    nodes.push({ kind: "group", path, address, attrs: readAttrs(path) });
    for (const name of m.get_names(fileId, path, false) as string[]) {
      const child = childPath(path, name);
      const soft = m.get_symbolic_link(fileId, child) as string | null;
      if (soft !== null) {
        let dangling = false;
        try {
          dangling = m.get_type(fileId, child) < 0 || m.get_type(fileId, child) === m.H5G_LINK;
        } catch {
          dangling = true;
        }
        nodes.push({ kind: "soft-link", path: child, target: soft, dangling });
        continue;
      }
      let type: number;
      try {
        type = m.get_type(fileId, child);
      } catch (e) {
        nodes.push({ kind: "unsupported", path: child, reason: errorMessage(e) });
        continue;
      }
      if (type === m.H5G_UDLINK) {
        let ext: { filename: string; obj_path: string } | null = null;
        try {
          ext = m.get_external_link(fileId, child) as { filename: string; obj_path: string } | null;
        } catch {
          ext = null;
        }
        if (ext) nodes.push({ kind: "external-link", path: child, file: ext.filename, target: ext.obj_path });
        else nodes.push({ kind: "unsupported", path: child, reason: "user-defined link" });
      } else if (type === m.H5G_GROUP) {
        const address = readAddress(m, fileId, child);
        if (ancestors.has(address)) {
          nodes.push({ kind: "unsupported", path: child, reason: "hard link to an ancestor group (cycle)" });
          continue;
        }
        ancestors.add(address);
        visitGroup(child, address, ancestors);
        ancestors.delete(address);
      } else if (type === m.H5G_DATASET) {
        try {
          visitDataset(child);
        } catch (e) {
          nodes.push({ kind: "unsupported", path: child, reason: errorMessage(e) });
        }
      }
      // named datatypes (H5G_TYPE) are not part of the Zarr hierarchy
    }
  };

  const rootAddress = readAddress(m, fileId, "/");
  visitGroup("/", rootAddress, new Set([rootAddress]));
  return { nodes, rootObjectId: readObjectId("/"), objectIds };
}
