/**
 * Rate and remaining time of a run over items: items and bytes per second
 * since the run (re)started, and the remaining items at that pace. Shared by
 * the job manager (GET /jobs/:id) and the precompute CLI (its progress bar).
 */
export interface Pace {
  itemsPerSecond: number;
  bytesPerSecond: number;
  /** null until an item finished in this run. */
  etaSeconds: number | null;
}

export class RateMeter {
  private items = 0;
  private bytes = 0;

  constructor(private readonly startedAt: number = Date.now()) {}

  /** One item finished (built, skipped or failed) and `bytes` were fetched for it. */
  record(bytes: number): void {
    this.items++;
    this.bytes += bytes;
  }

  pace(remainingItems: number, now: number = Date.now()): Pace {
    const seconds = Math.max(0.001, (now - this.startedAt) / 1000);
    const itemsPerSecond = this.items / seconds;
    return {
      itemsPerSecond,
      bytesPerSecond: this.bytes / seconds,
      etaSeconds: remainingItems === 0 ? 0 : this.items === 0 ? null : remainingItems / itemsPerSecond,
    };
  }
}
