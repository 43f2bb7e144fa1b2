/**
 * Progress of a run over many items, for the precompute command:
 *
 * - "bar" (a TTY): one live line, redrawn in place —
 *   `[#########-----------]  12/34 items  2 skipped  1 failed  4.2 MB  1.1 MB/s  ETA 0:07`;
 *   failures are printed above it as they happen.
 * - "lines" (anything else: logs, CI, pipes): one plain line per finished item —
 *   `[12/34] built   <path>  index 25.0 kB, fetched 107 kB, 0.14 s | 4.2 MB, 1.1 MB/s, ETA 0:07`.
 */
import { RateMeter } from "../jobs/eta.ts";

export type ProgressMode = "bar" | "lines";
export type ItemOutcome = "built" | "skipped" | "failed";

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ItemDetail {
  /** Bytes fetched from the origin. */
  bytesFetched?: number;
  indexBytes?: number;
  millis?: number;
  reason?: string;
}

export function formatBytes(n: number): string {
  if (n < 1000) return `${Math.round(n)} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)} ${units[i]}`;
}

/** 7 → "0:07", 3725 → "1:02:05"; null → "?". */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

export class Progress {
  private total: number;
  private built = 0;
  private skipped = 0;
  private failed = 0;
  private running = 0;
  private bytes = 0;
  private readonly meter: RateMeter;
  private readonly started = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private drawn = false;

  constructor(
    private readonly out: ProgressStream,
    readonly mode: ProgressMode,
    total: number,
    private readonly now: () => number = Date.now,
  ) {
    this.total = total;
    this.meter = new RateMeter(now());
    if (mode === "bar") {
      this.timer = setInterval(() => this.draw(), 200);
      this.timer.unref();
    }
  }

  /** Auto: a bar on a TTY, lines otherwise. */
  static modeFor(out: ProgressStream): ProgressMode {
    return out.isTTY ? "bar" : "lines";
  }

  get finished(): number {
    return this.built + this.skipped + this.failed;
  }

  get counts(): { total: number; built: number; skipped: number; failed: number; bytesFetched: number } {
    return { total: this.total, built: this.built, skipped: this.skipped, failed: this.failed, bytesFetched: this.bytes };
  }

  itemStarted(): void {
    this.running++;
  }

  itemFinished(outcome: ItemOutcome, label: string, d: ItemDetail = {}): void {
    this.running = Math.max(0, this.running - 1);
    this[outcome]++;
    const fetched = d.bytesFetched ?? 0;
    this.bytes += fetched;
    this.meter.record(fetched);
    if (this.mode === "lines") {
      this.out.write(`${this.line(outcome, label, d)} | ${this.summary(false)}\n`);
    } else {
      if (outcome === "failed") this.above(this.line(outcome, label, d));
      this.draw();
    }
  }

  /** A message of its own (above the bar, or a plain line). */
  note(text: string): void {
    if (this.mode === "bar") this.above(text);
    else this.out.write(text + "\n");
  }

  /** Stops redrawing and leaves the final state on screen. */
  end(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.mode === "bar") {
      this.draw();
      this.out.write("\n");
      this.drawn = false;
    }
  }

  /** Seconds since the start. */
  get seconds(): number {
    return (this.now() - this.started) / 1000;
  }

  private line(outcome: ItemOutcome, label: string, d: ItemDetail): string {
    const n = String(this.finished).padStart(String(this.total).length);
    const head = `[${n}/${this.total}] ${outcome === "failed" ? "FAILED " : outcome.padEnd(7)} ${label}`;
    if (outcome === "failed") return `${head}: ${d.reason ?? "failed"}`;
    if (outcome === "skipped") return `${head}  up to date`;
    const parts: string[] = [];
    if (d.indexBytes !== undefined) parts.push(`index ${formatBytes(d.indexBytes)}`);
    if (d.bytesFetched !== undefined) parts.push(`fetched ${formatBytes(d.bytesFetched)}`);
    if (d.millis !== undefined) parts.push(`${(d.millis / 1000).toFixed(2)} s`);
    return parts.length > 0 ? `${head}  ${parts.join(", ")}` : head;
  }

  private summary(bar: boolean): string {
    const remaining = Math.max(0, this.total - this.finished);
    const pace = this.meter.pace(remaining, this.now());
    const eta = `ETA ${formatDuration(pace.etaSeconds)}`;
    const rate = `${formatBytes(pace.bytesPerSecond)}/s`;
    const items = `${pace.itemsPerSecond.toFixed(pace.itemsPerSecond < 10 ? 1 : 0)} items/s`;
    if (!bar) return `${formatBytes(this.bytes)} fetched, ${rate}, ${items}, ${eta}`;
    const extra = [this.skipped > 0 ? `${this.skipped} skipped` : "", this.failed > 0 ? `${this.failed} failed` : ""].filter(Boolean);
    return [`${this.finished}/${this.total} items`, ...extra, formatBytes(this.bytes), rate, items, eta].join("  ");
  }

  private draw(): void {
    if (this.mode !== "bar") return;
    const width = Math.max(40, this.out.columns && this.out.columns > 0 ? this.out.columns : 80);
    const text = this.summary(true);
    const barWidth = Math.max(10, Math.min(30, width - 72)); // steady: not following the text's length
    const frac = this.total > 0 ? this.finished / this.total : 1;
    const full = Math.round(frac * barWidth);
    const bar = `[${"#".repeat(full)}${"-".repeat(barWidth - full)}]`;
    this.out.write(`\r\x1b[K${`${bar} ${text}`.slice(0, width - 1)}`);
    this.drawn = true;
  }

  private above(text: string): void {
    this.out.write(this.drawn ? `\r\x1b[K${text}\n` : `${text}\n`);
    this.drawn = false;
    this.draw();
  }

  /** The total can grow while a listing is expanded. */
  setTotal(n: number): void {
    this.total = n;
  }
}
