/**
 * Encoded answers of /slice and /meta, kept by their ETag (validators.ts: the
 * index version + route + query), so a query asked again — a dashboard
 * reloading, several viewers on one dataset — is answered without planning,
 * reading, decoding or encoding it again. Encoding is most of a warm JSON
 * answer's cost (float32 text: ≈ 0.3–0.5 µs per element, so a 4,096-element
 * slice takes ≈ 2 ms and a 400,000-element one ≈ 0.25 s each time; BENCHMARKS.md).
 *
 * The tag names one version of the source's index, so a changed source never
 * gets an old answer (its index is a new version with new tags). Bounded in
 * bytes (LRU); answers over an eighth of the bound are not kept, nor are
 * answers whose client left before the end (a streamed answer is kept only
 * when it was produced whole).
 */
import { LRUCache } from "lru-cache";

export interface CachedAnswer {
  /** The identity-coded body (compression, when accepted, is applied per request). */
  body: Buffer;
  contentType: string;
  /** Headers beside the validators (X-Dtype, X-Shape, Content-Disposition). */
  headers: Record<string, string>;
}

/** A JSON answer (no headers beside the validators); its body a Buffer to keep, or a stream to send. */
export function jsonAnswer<B>(body: B): Omit<CachedAnswer, "body"> & { body: B } {
  return { body, contentType: "application/json", headers: {} };
}

/** Bytes charged per entry beyond its body (key, headers, bookkeeping). */
const ENTRY_OVERHEAD = 512;

export class AnswerCache {
  readonly stats = { hits: 0, misses: 0 };
  /** Largest body kept, bytes. */
  readonly maxItemBytes: number;
  private readonly lru: LRUCache<string, CachedAnswer> | undefined;

  /** `maxBytes` 0: off (nothing is kept). */
  constructor(maxBytes: number) {
    this.maxItemBytes = Math.floor(maxBytes / 8);
    this.lru =
      this.maxItemBytes > 0
        ? new LRUCache<string, CachedAnswer>({
            maxSize: maxBytes,
            maxEntrySize: maxBytes,
            sizeCalculation: (a) => a.body.byteLength + ENTRY_OVERHEAD,
          })
        : undefined;
  }

  /** Whether a body of `bytes` would be kept (lets a streamed answer stop collecting early). */
  fits(bytes: number): boolean {
    return this.lru !== undefined && bytes <= this.maxItemBytes;
  }

  get(tag: string): CachedAnswer | undefined {
    if (!this.lru) return undefined;
    const hit = this.lru.get(tag);
    if (hit) this.stats.hits++;
    else this.stats.misses++;
    return hit;
  }

  /**
   * Keeps an answer. The body is kept as is when it owns its memory, else
   * copied (a view into a larger buffer — Node's pool for small strings —
   * would hold more than it is charged for). The caller must not change it.
   */
  set(tag: string, answer: CachedAnswer): void {
    if (!this.lru || !this.fits(answer.body.byteLength)) return;
    const { body } = answer;
    const owned = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body : copyExact(body);
    this.lru.set(tag, { ...answer, body: owned });
  }

  /** Bytes held (bodies and overhead). */
  get size(): number {
    return this.lru?.calculatedSize ?? 0;
  }

  clear(): void {
    this.lru?.clear();
  }
}

/** A copy in a buffer of exactly its length (not from Node's shared pool). */
function copyExact(b: Buffer): Buffer {
  const out = Buffer.allocUnsafeSlow(b.byteLength);
  b.copy(out);
  return out;
}
