import { elementCount } from "./dtype.ts";
import { decodeChunk } from "./filterDecoders.ts";
import type { ByteSource } from "./byteSource.ts";
import type { DatasetLayoutInfo, ExternalFileSegment, Hdf5LayoutReader } from "./layout/index.ts";

/** Opens a file named by an External Data Files message; absent = external storage cannot be read. */
export type ExternalFileOpener = (name: string) => Promise<ByteSource>;

async function readExternal(segments: ExternalFileSegment[], length: number, open: ExternalFileOpener | undefined): Promise<Uint8Array> {
  if (!open) throw new Error("data stored in external raw files cannot be read from here");
  const out = new Uint8Array(length);
  let done = 0;
  for (const seg of segments) {
    if (done >= length) break;
    const want = Math.min(seg.size, length - done);
    const source = await open(seg.name);
    try {
      const bytes = await source.read(seg.offset, want);
      if (bytes.length < want) throw new Error(`external file ${seg.name} is shorter than its segment`);
      out.set(bytes, done);
    } finally {
      await source.close?.();
    }
    done += want;
  }
  if (done < length) throw new Error("external segments hold less data than the dataset");
  return out;
}

/** `count` copies of the fill value (zeros when none is stored), in file byte order. */
function filled(count: number, elementSize: number, fill: Uint8Array | null): Uint8Array {
  const out = new Uint8Array(count * elementSize);
  if (fill && fill.length >= elementSize && fill.subarray(0, elementSize).some((b) => b !== 0)) {
    for (let i = 0; i < count; i++) out.set(fill.subarray(0, elementSize), i * elementSize);
  }
  return out;
}

/** Copies a decoded chunk (full chunk shape) into its place in the dataset buffer. */
function placeChunk(out: Uint8Array, chunk: Uint8Array, index: number[], chunkShape: number[], shape: number[], size: number): void {
  const ndim = shape.length;
  const origin = index.map((g, d) => g * chunkShape[d]!);
  const extent = origin.map((o, d) => Math.max(0, Math.min(chunkShape[d]!, shape[d]! - o)));
  if (extent.some((e) => e === 0)) return;
  const rowLen = extent[ndim - 1]! * size;
  const counter = new Array(Math.max(ndim - 1, 0)).fill(0);
  for (;;) {
    let src = 0;
    let dst = 0;
    for (let d = 0; d < ndim; d++) {
      const pos = d < ndim - 1 ? counter[d]! : 0;
      src = src * chunkShape[d]! + pos;
      dst = dst * shape[d]! + origin[d]! + pos;
    }
    out.set(chunk.subarray(src * size, src * size + rowLen), dst * size);
    let d = ndim - 2;
    while (d >= 0) {
      counter[d]!++;
      if (counter[d]! < extent[d]!) break;
      counter[d] = 0;
      d--;
    }
    if (d < 0) break;
  }
}

/**
 * A dataset's whole contents in file byte order, read with our own layout
 * reader and filter decoders. Used where h5wasm cannot read the values (a
 * filter plugin it lacks, a conversion HDF5 2.0 refuses).
 */
export async function readRawDataset(reader: Hdf5LayoutReader, info: DatasetLayoutInfo, openExternal?: ExternalFileOpener): Promise<Uint8Array> {
  const shape = info.shape ?? [];
  const size = info.elementSize;
  const count = elementCount(shape);
  const fill = info.fillValue.bytes;
  const layout = info.layout;
  switch (layout.kind) {
    case "compact":
      return layout.data.subarray(0, count * size);
    case "contiguous": {
      if (info.externalFiles) return readExternal(info.externalSegments ?? [], count * size, openExternal);
      if (layout.address === null) return filled(count, size, fill);
      const bytes = await reader.source.read(layout.address, count * size);
      if (bytes.length < count * size) throw new Error("contiguous data extends past the end of the file");
      return bytes;
    }
    case "chunked": {
      const out = filled(count, size, fill);
      const chunkBytes = elementCount(layout.chunkShape) * size;
      for (const c of await reader.listChunks(info)) {
        const stored = await reader.source.read(c.offset, c.size);
        const decoded = await decodeChunk(stored, info.filters, c.filterMask, size, chunkBytes);
        if (decoded.length < chunkBytes) throw new Error(`chunk ${c.index.join(".")} decodes to ${decoded.length} bytes, expected ${chunkBytes}`);
        placeChunk(out, decoded, c.index, layout.chunkShape, shape, size);
      }
      return out;
    }
    case "virtual":
      throw new Error("virtual datasets");
  }
}
