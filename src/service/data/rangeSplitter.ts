/**
 * Splits the body of one merged range request into the ranges it was made
 * for. Each range gets a buffer of its own, filled straight from the body's
 * pieces (one copy; the buffer is exactly the range, so a cache can keep it
 * as it is without pinning the rest of the body), and is handed over as soon
 * as its last byte is in, while the rest of the body is still arriving.
 */

/** One range of the request: `index` is the caller's, `start`/`end` absolute offsets. */
export interface SplitRange {
  index: number;
  start: number;
  end: number;
}

export class RangeSplitter {
  private readonly buffers: Uint8Array[];
  private readonly handedOver: boolean[];
  /** Positions in `ranges`, by end offset. */
  private readonly byEnd: number[];
  private nextByEnd = 0;
  /** Ranges before this position (by start) cannot take more bytes. */
  private first = 0;

  /**
   * `base`: the absolute offset of the body's first byte; `ranges` sorted by
   * start, all inside the body; `complete(range, bytes)` is called once per range.
   */
  constructor(
    private readonly base: number,
    private readonly ranges: readonly SplitRange[],
    private readonly complete: (range: SplitRange, bytes: Uint8Array) => void,
  ) {
    this.buffers = ranges.map((r) => new Uint8Array(r.end - r.start));
    this.handedOver = ranges.map(() => false);
    this.byEnd = ranges.map((_, k) => k).sort((a, b) => ranges[a]!.end - ranges[b]!.end);
  }

  /**
   * The body's next piece, `at` bytes after `base`. Pieces come in order; one
   * at 0 starts the body again (a retried request): ranges already handed
   * over are neither written nor handed over again.
   */
  write(piece: Uint8Array, at: number): void {
    if (at === 0) {
      this.first = 0;
      this.nextByEnd = 0;
    }
    const pieceStart = this.base + at;
    const pieceEnd = pieceStart + piece.byteLength;
    const ranges = this.ranges;
    for (let k = this.first; k < ranges.length && ranges[k]!.start < pieceEnd; k++) {
      const r = ranges[k]!;
      if (this.handedOver[k] || r.end <= pieceStart) continue;
      const from = Math.max(r.start, pieceStart);
      const to = Math.min(r.end, pieceEnd);
      this.buffers[k]!.set(piece.subarray(from - pieceStart, to - pieceStart), from - r.start);
    }
    while (this.first < ranges.length && ranges[this.first]!.end <= pieceEnd) this.first++;
    while (this.nextByEnd < this.byEnd.length) {
      const k = this.byEnd[this.nextByEnd]!;
      if (ranges[k]!.end > pieceEnd) break;
      this.nextByEnd++;
      if (this.handedOver[k]) continue;
      this.handedOver[k] = true;
      this.complete(ranges[k]!, this.buffers[k]!);
    }
  }

  /** The bytes of the range at position `k` (complete once the whole body was written). */
  bytes(k: number): Uint8Array {
    return this.buffers[k]!;
  }
}
