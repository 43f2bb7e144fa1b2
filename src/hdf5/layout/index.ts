/**
 * Async HDF5 layout reader: finds where a dataset's bytes live (contiguous
 * block, compact data, or the list of allocated chunks with exact offsets and
 * stored sizes) by decoding the file's own structures through a ByteSource.
 * It reads only small exact ranges, so the same code serves local files and
 * remote files over HTTP range requests.
 */
import type { ByteSource } from "../byteSource.ts";
import { listBtreeV1 } from "./chunkIndex/btreeV1.ts";
import { listBtreeV2 } from "./chunkIndex/btreeV2.ts";
import { compareIndex, type ChunkIndexContext } from "./chunkIndex/common.ts";
import { listExtensibleArray } from "./chunkIndex/extensibleArray.ts";
import { listFixedArray } from "./chunkIndex/fixedArray.ts";
import { listImplicit } from "./chunkIndex/implicit.ts";
import { listSingleChunk } from "./chunkIndex/single.ts";
import { readCompactAttribute, type RawAttribute } from "./attributes.ts";
import { readDatasetInfo } from "./dataset.ts";
import { GlobalHeapReader, readVlenElements } from "./globalHeap.ts";
import { Hdf5FormatError, Hdf5TruncatedError, Hdf5UnsupportedError } from "./errors.ts";
import { FileIo, type ReadStats } from "./reader.ts";
import { SohmResolver } from "./sohm.ts";
import { readSuperblock } from "./superblock.ts";
import { SuperblockExtension } from "./superblockExtension.ts";
import type { ChunkRecord, DatasetLayoutInfo, Superblock } from "./types.ts";

export type {
  ChunkIndexType,
  ChunkRecord,
  ChunkedLayout,
  DatasetLayoutInfo,
  DatatypeInfo,
  ExternalFileSegment,
  FillValueInfo,
  FilterInfo,
  FloatLayout,
  StorageLayout,
  Superblock,
} from "./types.ts";
export { Hdf5FormatError, Hdf5TruncatedError, Hdf5UnsupportedError } from "./errors.ts";
export type { ReadStats } from "./reader.ts";
export type { RawAttribute } from "./attributes.ts";

export class Hdf5LayoutReader {
  private readonly io: FileIo;
  private readonly sohm: SohmResolver;
  private readonly extension: SuperblockExtension;
  private readonly globalHeap: GlobalHeapReader;

  private constructor(
    readonly source: ByteSource,
    readonly superblock: Superblock,
  ) {
    this.io = new FileIo(source, {
      offsetSize: superblock.offsetSize,
      lengthSize: superblock.lengthSize,
      baseAddress: superblock.baseAddress,
    });
    const ext = superblock.extensionAddress;
    this.extension = new SuperblockExtension(this.io, ext === null ? null : ext + superblock.baseAddress);
    this.sohm = new SohmResolver(this.io, this.extension);
    this.globalHeap = new GlobalHeapReader(this.io);
  }

  /** A compactly stored attribute's raw data, or null (`address` relative, as HDF5 reports it). */
  readAttribute(address: number, name: string): Promise<RawAttribute | null> {
    return readCompactAttribute(this.io, address + this.superblock.baseAddress, name);
  }

  /** The bytes of each variable-length element of raw (file-format) data. */
  readVlenElements(raw: Uint8Array, count: number): Promise<Uint8Array[]> {
    return readVlenElements(this.io, this.globalHeap, raw, count);
  }

  /** Finds and parses the superblock. */
  static async open(source: ByteSource): Promise<Hdf5LayoutReader> {
    const sb = await readSuperblock(source);
    return new Hdf5LayoutReader(source, sb);
  }

  /** Reads issued through this reader so far (excluding the superblock search). */
  get stats(): ReadStats {
    return this.io.stats;
  }

  /**
   * `address` is as HDF5 reports object addresses (relative to the base
   * address), e.g. what h5wasm's Module.create_object_reference returns as an
   * 8-byte little-endian number.
   */
  async readDataset(address: number): Promise<DatasetLayoutInfo> {
    if (!Number.isSafeInteger(address) || address < 0) {
      throw new Hdf5FormatError(`invalid object address ${address}`);
    }
    try {
      return await readDatasetInfo({ io: this.io, sohm: this.sohm }, address + this.superblock.baseAddress);
    } catch (err) {
      // With a metadata cache image the object headers are not where their
      // addresses say; report that instead of a confusing parse error.
      if (err instanceof Hdf5FormatError && !(err instanceof Hdf5TruncatedError) && (await this.extension.hasCacheImage())) {
        throw new Hdf5UnsupportedError(
          `files with a metadata cache image are not supported (object header at ${address} could not be read: ${err.message})`,
        );
      }
      throw err;
    }
  }

  /**
   * Every allocated chunk of a chunked dataset, sorted by index (row-major).
   * Never-written chunks are omitted (undefined address). Non-chunked
   * layouts have no chunks ([]).
   */
  async listChunks(info: DatasetLayoutInfo): Promise<ChunkRecord[]> {
    const layout = info.layout;
    if (layout.kind !== "chunked") return [];
    if (!info.shape || !info.maxShape) return [];
    const ctx: ChunkIndexContext = {
      io: this.io,
      layout,
      shape: info.shape,
      maxShape: info.maxShape,
      what: `dataset at ${info.objectHeaderAddress}`,
    };
    let chunks: ChunkRecord[];
    switch (layout.indexType) {
      case "btree-v1":
        chunks = await listBtreeV1(ctx);
        break;
      case "btree-v2":
        chunks = await listBtreeV2(ctx);
        break;
      case "fixed-array":
        chunks = await listFixedArray(ctx);
        break;
      case "extensible-array":
        chunks = await listExtensibleArray(ctx);
        break;
      case "single-chunk":
        chunks = listSingleChunk(ctx);
        break;
      case "implicit":
        chunks = listImplicit(ctx);
        break;
    }
    return chunks.sort(compareIndex);
  }
}
