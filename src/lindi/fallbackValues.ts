import { customFloatsToIeee, isIeeeLayout } from "../hdf5/customFloat.ts";
import { elementCount, H5T } from "../hdf5/dtype.ts";
import type { Hdf5LayoutReader } from "../hdf5/layout/index.ts";
import { readRawDataset, type ExternalFileOpener } from "../hdf5/rawData.ts";
import { decodeFixedElements, swapElements, type H5Value } from "../hdf5/values.ts";
import { isFixedSizeSimple, isVlenString, normalizeRawBytes, type H5Attr, type H5Node } from "../hdf5/walk.ts";
import type { Metadata } from "h5wasm";
import { LindiConversionError } from "./errors.ts";

type DatasetNode = Extract<H5Node, { kind: "dataset" }>;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** File-order bytes → the walk's convention (h5wasm's): little-endian elements, h5py's string padding. */
function toWalkBytes(raw: Uint8Array, md: Metadata, itemsize: number): Uint8Array {
  const bytes = md.littleEndian || md.size <= 1 || md.type === H5T.STRING ? raw.slice() : swapElements(raw.slice(), md.size);
  return normalizeRawBytes(bytes, md, itemsize);
}

async function vlenStrings(reader: Hdf5LayoutReader, raw: Uint8Array, count: number): Promise<string[]> {
  const items = await reader.readVlenElements(raw, count);
  return items.map((b) => {
    const end = b.indexOf(0);
    return utf8.decode(end >= 0 ? b.subarray(0, end) : b);
  });
}

/**
 * Where h5wasm could not read an inline dataset's values (a filter plugin it
 * lacks, a byte-order conversion HDF5 2.0 refuses), read them with our own
 * layout reader, filter decoders and global heap reader instead.
 */
export async function withFallbackValues(node: DatasetNode, reader: Hdf5LayoutReader, openExternal?: ExternalFileOpener): Promise<DatasetNode> {
  const values = node.inline;
  const md = node.md;
  if (values?.kind !== "error" || !values.readFailed || !(isFixedSizeSimple(md) || isVlenString(md))) return node;
  try {
    const info = await reader.readDataset(node.address);
    const raw = await readRawDataset(reader, info, openExternal);
    if (isVlenString(md)) {
      return { ...node, inline: { kind: "elements", elements: await vlenStrings(reader, raw, elementCount(node.shape ?? [])) } };
    }
    let bytes = toWalkBytes(raw, md, node.dtype.itemsize);
    // h5py converts custom float layouts (e.g. N-bit reduced precision) to IEEE on read
    const float = info.datatype.float;
    if (float && !isIeeeLayout(float, md.size)) bytes = customFloatsToIeee(bytes, md.size, float);
    return { ...node, inline: { kind: "bytes", bytes } };
  } catch (e) {
    throw new LindiConversionError(node.path, `${values.message}; own decoding failed too: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The same for attributes h5wasm could not read (compactly stored ones). */
export async function withFallbackAttrs(attrs: H5Attr[], address: number, reader: Hdf5LayoutReader): Promise<H5Attr[]> {
  if (!attrs.some((a) => a.readFailed)) return attrs;
  return Promise.all(
    attrs.map(async (attr): Promise<H5Attr> => {
      const md = attr.md;
      if (!attr.readFailed || !(isFixedSizeSimple(md) || isVlenString(md))) return attr;
      try {
        const raw = await reader.readAttribute(address, attr.name);
        if (!raw) return attr;
        const n = raw.shape === null ? 0 : elementCount(raw.shape);
        const elements: H5Value[] = isVlenString(md)
          ? await vlenStrings(reader, raw.data, n)
          : decodeFixedElements(toWalkBytes(raw.data.subarray(0, n * md.size), md, md.size), md, n);
        return { ...attr, elements, error: undefined, readFailed: false };
      } catch {
        return attr;
      }
    }),
  );
}
