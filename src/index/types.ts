/**
 * The contract between the HTTP service (routes/, src/server.ts) and the
 * build machinery (src/index/: remote sources, worker pool). The service
 * only sees these types.
 */

/** Options that change a LINDI index (part of the cache key). */
export interface BuildOptions {
  /** Chunked datasets with more chunks than this become `_EXTERNAL_ARRAY_LINK`; null disables. Default 1000. */
  chunksThreshold: number | null;
  /** Unfiltered single-chunk numeric datasets larger than this are split; null disables. Default 20000000. */
  splitBytes: number | null;
}

/** What a cheap probe of the source tells (HEAD, or a Range 0-0 GET). */
export interface SourceInfo {
  /** The URL the user gave (written into refs). */
  url: string;
  /** Where the bytes were actually read (after redirects); not stable. */
  resolvedUrl: string;
  size: number;
  etag: string | null;
  lastModified: string | null;
}

/** Result of one build. */
export interface BuildResult {
  /** The serialized `.lindi.json` (Python json.dumps(indent=2, sort_keys=True) bytes). */
  json: Uint8Array;
  /** Bytes fetched from the origin and requests made, for metrics and job progress. */
  bytesFetched: number;
  requests: number;
  /** Wall time of the build in milliseconds. */
  millis: number;
}

export interface IndexBuilder {
  /** Size and validator of the source; throws the typed errors of src/hdf5/httpErrors.ts. */
  probe(url: string, signal?: AbortSignal): Promise<SourceInfo>;
  /** Builds the index; rejects with LindiConversionError / NotHdf5Error / HTTP errors; honours `signal`. */
  build(source: SourceInfo, opts: BuildOptions, signal?: AbortSignal): Promise<BuildResult>;
  /** Ends worker threads and sockets. */
  close(): Promise<void>;
}
