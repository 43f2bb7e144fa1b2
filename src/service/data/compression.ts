/**
 * On-the-fly compression of large JSON answers (/slice, /meta) with
 * @fastify/compress. The server registers it with these options but not
 * globally: handlers send JSON through `reply.compress`, everything else with
 * `reply.send` (the plugin's own content-type test would compress
 * application/octet-stream too, which mime-db calls compressible). gzip only:
 * brotli at its default quality is far too slow for tens of MB of numbers.
 */

/** JSON answers above this many bytes are gzipped when the client accepts it (streamed ones always). */
export const JSON_COMPRESS_THRESHOLD = 16 * 1024;

export const JSON_COMPRESSION: { encodings: "gzip"[]; threshold: number; zlibOptions: { level: number } } = {
  encodings: ["gzip"],
  threshold: JSON_COMPRESS_THRESHOLD,
  zlibOptions: { level: 5 },
};
