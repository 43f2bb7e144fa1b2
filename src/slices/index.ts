/**
 * Slices of LINDI datasets: the library behind `GET /slice` and `GET /chunk`.
 * See README.md in this folder for the design and the error → status mapping.
 */
export { parseSelection, formatSelection, SelectionError, type Selection, type DimSelection } from "./selection.ts";
export {
  LindiRefStore,
  ChunkCache,
  defaultChunkCache,
  fileRangeReader,
  httpRangeReader,
  routingRangeReader,
  InvalidRefError,
  ShortReadError,
  UnsupportedUrlError,
  type OnRange,
  type RangeReader,
  type LindiRefs,
  type RefLocation,
} from "./refStore.ts";
export { registerLindiCodecs, UnsupportedDtypeError, ChecksumError, ChunkSizeError } from "./codecs.ts";
export { sourceOpener, ExternalDatasetCache, defaultExternalDatasetCache, type SourceOpener } from "./external.ts";
export {
  readSlice,
  datasetInfo,
  resolvePath,
  PathNotFoundError,
  NotADatasetError,
  SliceTooLargeError,
  ChunkDecodeError,
  DEFAULT_SLICE_LIMITS,
  answerItemBytes,
  checkSliceLimits,
  type ReadSliceOptions,
  type SliceLimits,
  type SliceResult,
  type SliceData,
  type DatasetInfo,
  type CompoundField,
} from "./readSlice.ts";
export { DecodedChunkCache, defaultDecodedChunkCache } from "./decodedChunks.ts";
export { encodeSlice, encodeJson, encodeJsonPieces, encodeBin, encodeNpy, NotRepresentableError, type SliceFormat, type EncodedSlice } from "./encode.ts";
export { locateChunk, parseChunkKey, ChunkNotFoundError, InvalidChunkKeyError, type ChunkInfo, type ChunkBytesLocation } from "./chunkBytes.ts";
export { resolveHdf5Path, Hdf5PathError } from "./hdf5Path.ts";
