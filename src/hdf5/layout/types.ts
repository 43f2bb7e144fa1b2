/** Public result types of the layout reader (kept apart so modules can share them without cycles). */

export interface Superblock {
  version: number;
  offsetSize: number;
  lengthSize: number;
  /** Absolute file position all stored addresses are relative to (= superblockOffset, as HDF5 itself uses). */
  baseAddress: number;
  /** Base address as written in the superblock (normally equal to baseAddress). */
  storedBaseAddress: number;
  /** Absolute position of the superblock (user block size). */
  superblockOffset: number;
  /** Root group object header address, relative to baseAddress (as HDF5 reports object addresses). */
  rootObjectHeaderAddress: number;
  /** Superblock extension object header, relative to baseAddress (v2/v3), or null. */
  extensionAddress: number | null;
  /** End-of-file address from the superblock, relative to baseAddress (null if undefined). */
  endOfFileAddress: number | null;
  /** True when the file is shorter than the superblock's end-of-file address says. */
  truncated: boolean;
}

export interface FilterInfo {
  id: number;
  /** Name stored in the file, else the standard name for ids 1-6, else null. */
  name: string | null;
  flags: number;
  cdValues: number[];
  optional: boolean;
}

export interface FillValueInfo {
  /** A user- or library-defined value is present in the file (bytes non-empty). */
  defined: boolean;
  /** The stored fill value, when its size is > 0. */
  bytes: Uint8Array | null;
  /** H5D_alloc_time_t: 1 early, 2 late, 3 incremental (0 = default). */
  allocTime: number;
  /** H5D_fill_time_t: 0 on allocation, 1 never, 2 if set. */
  fillTime: number;
  /** "undefined" (explicitly no fill value), "default" (library default, zeros), "user" (bytes present). */
  status: "undefined" | "default" | "user";
  /** Which message supplied it: 0x0005, 0x0004, or null (none; defaults assumed). */
  source: "fill-value" | "old-fill-value" | null;
}

export type ChunkIndexType =
  | "btree-v1"
  | "single-chunk"
  | "implicit"
  | "fixed-array"
  | "extensible-array"
  | "btree-v2";

export interface ChunkedLayout {
  kind: "chunked";
  /** Chunk dimensions of the dataset (without the element-size dimension). */
  chunkShape: number[];
  indexType: ChunkIndexType;
  /** Absolute file position of the chunk index (B-tree / array header / the single chunk / first implicit chunk), null if never allocated. */
  indexAddress: number | null;
  /** Uncompressed bytes of one full chunk: product(chunkShape) * layout element size. */
  chunkBytes: number;
  /** Element size recorded in the layout message's extra dimension. */
  layoutElementSize: number;
  /** Layout message version (1-5). */
  layoutVersion: number;
  /** Layout v4 flags (bit 0: don't filter partial edge chunks, bit 1: single chunk is filtered). */
  flags: number;
  /** Single-chunk index with filters: stored size and filter mask of the chunk. */
  singleChunkFilteredSize?: number;
  singleChunkFilterMask?: number;
  /** Fixed array: log2 of elements per data block page. */
  fixedArrayPageBits?: number;
  /** Extensible array creation parameters. */
  extensibleArray?: {
    maxBits: number;
    indexElements: number;
    minPointers: number;
    minElements: number;
    pageBits: number;
  };
  /** v2 B-tree creation parameters. */
  btreeV2?: { nodeSize: number; splitPercent: number; mergePercent: number };
}

export type StorageLayout =
  | { kind: "compact"; data: Uint8Array }
  /** address: absolute file position, null = never allocated. */
  | { kind: "contiguous"; address: number | null; size: number }
  | ChunkedLayout
  | { kind: "virtual" };

export interface DatatypeInfo {
  /** HDF5 datatype class (0 fixed, 1 float, 2 time, 3 string, 4 bitfield, 5 opaque, 6 compound, 7 reference, 8 enum, 9 vlen, 10 array, 11 complex). */
  class: number;
  version: number;
  size: number;
  /** Byte order for classes with one (fixed, float, time, bitfield, and enum/array of those), else null. */
  byteOrder: "LE" | "BE" | null;
  /** Bit layout of a floating-point type (class 1). */
  float?: FloatLayout;
}

/** Where the fields of a floating-point value sit (bit positions from the least significant bit). */
export interface FloatLayout {
  bitOffset: number;
  precision: number;
  signPosition: number;
  exponentPosition: number;
  exponentSize: number;
  mantissaPosition: number;
  mantissaSize: number;
  exponentBias: number;
  /** 0 none, 1 most significant bit always set, 2 implied (IEEE). */
  normalization: number;
}

export interface DatasetLayoutInfo {
  /** Absolute file position of the object header. */
  objectHeaderAddress: number;
  /** null = H5S_NULL dataspace; [] = scalar. */
  shape: number[] | null;
  /** null entries = unlimited; null overall for H5S_NULL. */
  maxShape: (number | null)[] | null;
  /** Size in bytes of one element, from the datatype message. */
  elementSize: number;
  datatype: DatatypeInfo;
  layout: StorageLayout;
  /** [] when there is no filter pipeline message. */
  filters: FilterInfo[];
  fillValue: FillValueInfo;
  /** External Data Files message present (raw data lives in other files). */
  externalFiles: boolean;
  /** The external segments when `externalFiles` is set. */
  externalSegments?: ExternalFileSegment[];
}

/** One piece of a dataset stored in an external raw file (H5Pset_external). */
export interface ExternalFileSegment {
  /** File name as stored (resolved by the reader, e.g. relative to the HDF5 file). */
  name: string;
  offset: number;
  /** Bytes in this segment (may be "unlimited" = very large for the last one). */
  size: number;
}

export interface ChunkRecord {
  /** Chunk grid index per dimension (element offset / chunk dim). */
  index: number[];
  /** Absolute file position of the stored chunk. */
  offset: number;
  /** Stored (possibly filtered) size in bytes. */
  size: number;
  /** Bit i set = filter i of the pipeline was skipped for this chunk. */
  filterMask: number;
}
