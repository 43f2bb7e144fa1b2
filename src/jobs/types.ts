/** Precompute jobs as stored (one JSON file per job) and as reported. */
import type { ListingProgress } from "./dandi.ts";

export type JobState = "queued" | "running" | "done" | "failed" | "cancelled";
export const FINAL_STATES: ReadonlySet<JobState> = new Set(["done", "failed", "cancelled"]);

/** "running" exists only in memory: a stored running item is pending (it is done again after a restart). */
export type ItemState = "pending" | "running" | "done" | "skipped" | "failed";

export interface ItemError {
  statusCode: number;
  message: string;
}

export interface JobItem {
  /** The source URL (normalized). */
  url: string;
  /** Where the index goes in the mirror layout (relative). */
  path: string;
  state: ItemState;
  /** done items: "built" (a build ran for it) or "cached" (the index was in the cache already). */
  outcome?: "built" | "cached";
  error?: ItemError;
  bytesFetched?: number;
  finishedAt?: string;
  /** DANDI listings: the asset's size and path in the dandiset. */
  size?: number;
  assetPath?: string;
}

export type JobSource =
  | { kind: "urls" }
  | { kind: "dandiset"; dandiset: string; version: string; apiUrl: string };

export interface JobRecord {
  format: 1;
  id: string;
  state: JobState;
  source: JobSource;
  /** Indexes are written to the mirror directory too. */
  mirror: boolean;
  /** Items built at once. */
  concurrency: number;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** null until the DANDI listing has been expanded. */
  items: JobItem[] | null;
  listing?: ListingProgress;
  /** Why the job itself failed (state "failed"); item failures are on the items. */
  error?: ItemError;
  bytesFetched: number;
  /** Run time before the current run (across restarts), ms. */
  activeMillis: number;
  /** Progress events so far (the SSE event id). */
  seq: number;
  /** Restarts this job was resumed after. */
  resumed: number;
}

export interface JobCounts {
  total: number;
  pending: number;
  running: number;
  done: number;
  skipped: number;
  failed: number;
}

export function countItems(items: readonly JobItem[] | null): JobCounts {
  const c: JobCounts = { total: 0, pending: 0, running: 0, done: 0, skipped: 0, failed: 0 };
  for (const it of items ?? []) {
    c.total++;
    c[it.state]++;
  }
  return c;
}
