/**
 * Job records on disk: `<dir>/<id>.json`, written atomically. Saves of one
 * job are serialized and coalesced (a save asked for while one is waiting
 * joins it); each write serializes the record as it is when the write starts.
 */
import { mkdir, readdir, readFile, unlink } from "node:fs/promises";
import path from "node:path";
import { removeStaleTemporaries, writeFileAtomic } from "./atomic.ts";
import type { JobRecord } from "./types.ts";

export const JOB_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Slot {
  tail: Promise<void>;
  queued: Promise<void> | undefined;
}

export class JobStore {
  private readonly slots = new Map<string, Slot>();

  constructor(readonly dir: string) {}

  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await removeStaleTemporaries(this.dir);
  }

  private file(id: string): string {
    if (!JOB_ID_RE.test(id)) throw new Error(`bad job id ${JSON.stringify(id)}`);
    return path.join(this.dir, `${id}.json`);
  }

  /** Every readable job record; unreadable files are reported and left alone. */
  async loadAll(onBad?: (file: string, reason: string) => void): Promise<JobRecord[]> {
    const out: JobRecord[] = [];
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (!name.endsWith(".json") || !JOB_ID_RE.test(name.slice(0, -5))) continue;
      const file = path.join(this.dir, name);
      try {
        const rec = JSON.parse(await readFile(file, "utf8")) as JobRecord;
        if (rec?.format !== 1 || rec.id !== name.slice(0, -5)) throw new Error("not a job record");
        out.push(rec);
      } catch (e) {
        onBad?.(file, (e as Error).message);
      }
    }
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  save(job: JobRecord): Promise<void> {
    let s = this.slots.get(job.id);
    if (!s) {
      s = { tail: Promise.resolve(), queued: undefined };
      this.slots.set(job.id, s);
    }
    if (s.queued) return s.queued;
    const slot = s;
    const p = slot.tail.then(() => {
      slot.queued = undefined;
      return writeFileAtomic(this.file(job.id), storedForm(job));
    });
    slot.queued = p;
    slot.tail = p.catch(() => undefined);
    return p;
  }

  async remove(id: string): Promise<void> {
    await unlink(this.file(id)).catch(() => undefined);
  }

  /** Waits for every save asked for so far. */
  async flush(): Promise<void> {
    await Promise.all([...this.slots.values()].map((s) => s.tail));
  }
}

/** The stored form: in-flight items are stored as pending. */
function storedForm(job: JobRecord): string {
  const items = job.items?.map((it) => (it.state === "running" ? { ...it, state: "pending" as const } : it)) ?? null;
  return JSON.stringify({ ...job, items }) + "\n";
}
