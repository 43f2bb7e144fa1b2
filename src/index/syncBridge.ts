/**
 * A blocking request/response channel between a worker thread and the thread
 * that owns the HTTP client (the main thread).
 *
 * h5wasm (phase A) reads its file synchronously: every read HDF5 makes must
 * return the bytes before it returns. The worker posts a request on a
 * MessagePort and blocks with `Atomics.wait` on a SharedArrayBuffer; the main
 * thread (whose event loop is free) performs the async range fetch, copies the
 * bytes into the shared data area, sets the state and calls `Atomics.notify`.
 *
 * Shared buffer layout: a 16-byte header of four Int32 slots followed by the
 * data area.
 *
 *   [STATE] PENDING | OK | ERROR | CLOSED
 *   [LENGTH] bytes of the answer at the start of the data area (OK)
 *   [SEQ] sequence number of the request this answer belongs to
 *   [EXTRAS] number of unrequested extras that follow the answer
 *
 * Extras let the main side hand over, with any answer, bytes the worker did
 * not ask for but will (prefetched blocks): one wait then fills the worker's
 * cache for many later reads. After the answer come, 4-byte aligned, one
 * (tag, length) Int32 pair per extra, then the extras' bytes back to back.
 *
 * Requests are strictly sequential per channel (one blocked reader), so one
 * header suffices; the sequence number guards against a late answer to a
 * request the worker already gave up on.
 */

export const BRIDGE_HEADER_BYTES = 16;

const STATE = 0;
const LENGTH = 1;
const SEQ = 2;
const EXTRAS = 3;

export const BridgeState = {
  PENDING: 0,
  OK: 1,
  ERROR: 2,
  /** The main side ended the channel (build aborted, timed out, or finished): every later request fails. */
  CLOSED: 3,
} as const;

/** A shared buffer for one channel with `capacity` bytes of data area. */
export function createBridgeBuffer(capacity: number): SharedArrayBuffer {
  if (!Number.isSafeInteger(capacity) || capacity <= 0) throw new RangeError(`invalid bridge capacity ${capacity}`);
  return new SharedArrayBuffer(BRIDGE_HEADER_BYTES + capacity);
}

/** The message a blocked worker posts: block-aligned (`exact: false`) or exact byte ranges, flat [start, end) pairs. */
export interface SyncRequestMessage {
  t: "sync";
  seq: number;
  /** Flat list of [start, end) pairs. */
  runs: number[];
  /** True for exact (uncached, large) ranges; false for whole blocks. */
  exact: boolean;
}

/** Bytes the main side sent without being asked, named by a tag (a block index). */
export interface BridgeExtra {
  tag: number;
  bytes: Uint8Array;
}

/** An answer: views of the shared data area, valid until the next request. */
export interface BridgeAnswer {
  data: Uint8Array;
  extras: BridgeExtra[];
}

/** Bytes that `extras` occupy in the data area besides their own: the (tag, length) pairs and alignment. */
export function extraOverhead(count: number): number {
  return count * 8 + 3;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** Why a blocking request failed. */
export class BridgeError extends Error {
  constructor(
    message: string,
    /** "error": the main side failed the request; "closed": the channel is gone; "timeout": no answer in time. */
    readonly kind: "error" | "closed" | "timeout",
  ) {
    super(message);
    this.name = "BridgeError";
  }
}

interface PortLike {
  postMessage(message: unknown): void;
}

/** Worker side: posts a request and blocks until it is answered. */
export class SyncBridgeClient {
  private readonly ctl: Int32Array;
  private readonly data: Uint8Array;
  private seq = 0;
  /** Blocking waits performed and total milliseconds spent blocked. */
  readonly stats = { waits: 0, waitedMs: 0 };

  constructor(
    sab: SharedArrayBuffer,
    private readonly port: PortLike,
    /** Longest time one request may block (a safety net; builds have their own timeout). */
    private readonly timeoutMs: number,
  ) {
    this.ctl = new Int32Array(sab, 0, BRIDGE_HEADER_BYTES / 4);
    this.data = new Uint8Array(sab, BRIDGE_HEADER_BYTES);
  }

  get capacity(): number {
    return this.data.byteLength;
  }

  /**
   * Sends `runs` and blocks until the answer is in. Returns views of the
   * shared data area holding the answer: copy them out before the next request.
   */
  request(runs: number[], exact: boolean): BridgeAnswer {
    if (Atomics.load(this.ctl, STATE) === BridgeState.CLOSED) throw new BridgeError("the I/O channel is closed", "closed");
    const seq = ++this.seq;
    Atomics.store(this.ctl, STATE, BridgeState.PENDING);
    const msg: SyncRequestMessage = { t: "sync", seq, runs, exact };
    this.port.postMessage(msg);
    const started = performance.now();
    const deadline = started + this.timeoutMs;
    this.stats.waits++;
    try {
      for (;;) {
        const state = Atomics.load(this.ctl, STATE);
        if (state === BridgeState.CLOSED) throw new BridgeError("the I/O channel was closed while waiting", "closed");
        if (state !== BridgeState.PENDING && Atomics.load(this.ctl, SEQ) === seq) {
          if (state === BridgeState.ERROR) throw new BridgeError("the range request failed", "error");
          return this.answer();
        }
        const left = deadline - performance.now();
        if (left <= 0) throw new BridgeError(`no answer to a range request within ${this.timeoutMs} ms`, "timeout");
        Atomics.wait(this.ctl, STATE, state, Math.min(left, 1000));
      }
    } finally {
      this.stats.waitedMs += performance.now() - started;
    }
  }

  private answer(): BridgeAnswer {
    const length = Atomics.load(this.ctl, LENGTH);
    const count = Atomics.load(this.ctl, EXTRAS);
    const extras: BridgeExtra[] = [];
    if (count > 0) {
      const view = new DataView(this.data.buffer, this.data.byteOffset, this.data.byteLength);
      const pairs = align4(length);
      let at = pairs + count * 8;
      for (let k = 0; k < count; k++) {
        const tag = view.getInt32(pairs + k * 8, true);
        const len = view.getInt32(pairs + k * 8 + 4, true);
        extras.push({ tag, bytes: this.data.subarray(at, at + len) });
        at += len;
      }
    }
    return { data: this.data.subarray(0, length), extras };
  }
}

/** Main side: answers the requests of one channel. */
export class SyncBridgeServer {
  private readonly ctl: Int32Array;
  private readonly data: Uint8Array;

  constructor(sab: SharedArrayBuffer) {
    this.ctl = new Int32Array(sab, 0, BRIDGE_HEADER_BYTES / 4);
    this.data = new Uint8Array(sab, BRIDGE_HEADER_BYTES);
  }

  get capacity(): number {
    return this.data.byteLength;
  }

  get closed(): boolean {
    return Atomics.load(this.ctl, STATE) === BridgeState.CLOSED;
  }

  /**
   * Answers request `seq` with `parts` written one after the other, followed
   * by `extras` (everything must fit the capacity: see extraOverhead).
   */
  respond(seq: number, parts: readonly Uint8Array[], extras: readonly BridgeExtra[] = []): void {
    if (this.closed) return;
    let at = 0;
    const put = (p: Uint8Array) => {
      if (at + p.byteLength > this.data.byteLength) throw new RangeError("answer larger than the bridge capacity");
      this.data.set(p, at);
      at += p.byteLength;
    };
    for (const p of parts) put(p);
    const length = at;
    if (extras.length > 0) {
      const pairs = align4(length);
      if (pairs + extras.length * 8 > this.data.byteLength) throw new RangeError("answer larger than the bridge capacity");
      const view = new DataView(this.data.buffer, this.data.byteOffset, this.data.byteLength);
      extras.forEach((x, k) => {
        view.setInt32(pairs + k * 8, x.tag, true);
        view.setInt32(pairs + k * 8 + 4, x.bytes.byteLength, true);
      });
      at = pairs + extras.length * 8;
      for (const x of extras) put(x.bytes);
    }
    Atomics.store(this.ctl, LENGTH, length);
    Atomics.store(this.ctl, EXTRAS, extras.length);
    Atomics.store(this.ctl, SEQ, seq);
    Atomics.store(this.ctl, STATE, BridgeState.OK);
    Atomics.notify(this.ctl, STATE);
  }

  /** Fails request `seq` (the main side keeps the real error). */
  fail(seq: number): void {
    if (this.closed) return;
    Atomics.store(this.ctl, SEQ, seq);
    Atomics.store(this.ctl, STATE, BridgeState.ERROR);
    Atomics.notify(this.ctl, STATE);
  }

  /** Ends the channel: a blocked worker wakes up and every later request fails at once. */
  close(): void {
    Atomics.store(this.ctl, STATE, BridgeState.CLOSED);
    Atomics.notify(this.ctl, STATE);
  }
}
