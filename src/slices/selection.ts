/**
 * h5grove-style selections: one entry per dimension, comma-separated.
 *
 *   i        one index; the dimension is dropped from the result
 *   a:b      indices a ≤ k < b
 *   a:b:s    every s-th index from a, below b (s > 0)
 *   :  ::    the whole dimension (any part may be left out: `:b`, `a:`, `::s`)
 *
 * Python semantics for negative numbers: an index or bound below 0 counts from
 * the end (`-1` is the last element). Slice bounds are clamped to the dimension
 * as in Python (`0:100` on 50 elements selects 50; an empty range is allowed),
 * but a single index must exist (`-51` or `50` on 50 elements is an error).
 * Negative steps are not supported. Fewer entries than dimensions leave the
 * remaining dimensions whole; more entries is an error. An empty string (or
 * none) selects everything; the whole text may be wrapped in `[ ]`.
 */

/** A malformed or out-of-bounds selection (the route answers 400). */
export class SelectionError extends Error {
  override readonly name = "SelectionError";
  constructor(
    message: string,
    /** The selection text as given. */
    readonly selection: string,
  ) {
    super(message);
  }
}

export type DimSelection =
  /** A single index (dimension dropped). */
  | { kind: "index"; index: number }
  /** start, start+step, … while < stop; count = number of indices. */
  | { kind: "slice"; start: number; stop: number; step: number; count: number };

export interface Selection {
  /** One entry per dimension of the dataset. */
  dims: DimSelection[];
  /** Shape of the result (slice dimensions only). */
  shape: number[];
  /** Number of selected elements. */
  count: number;
  /** True when every dimension is selected whole (no copy needed). */
  whole: boolean;
}

const INT = /^[+-]?\d+$/;

/** `what` names the number in error messages ("start", "stop", "step", "index"). */
function parseInt53(text: string, what: string, axis: number, sel: string): number {
  const t = text.trim();
  if (!INT.test(t)) throw new SelectionError(`${what} for dimension ${axis}: ${JSON.stringify(t)} is not an integer`, sel);
  const v = Number(t);
  if (!Number.isSafeInteger(v)) throw new SelectionError(`${what} for dimension ${axis}: ${t} is out of range`, sel);
  return v;
}

/** Python's slice.indices for step > 0. */
function clampBound(v: number, dim: number): number {
  if (v < 0) return Math.max(0, v + dim);
  return Math.min(v, dim);
}

function sliceCount(start: number, stop: number, step: number): number {
  return stop > start ? Math.floor((stop - start - 1) / step) + 1 : 0;
}

/** The whole dimension. */
export function fullDim(dim: number): DimSelection {
  return { kind: "slice", start: 0, stop: dim, step: 1, count: dim };
}

function parseEntry(entry: string, dim: number, axis: number, sel: string): DimSelection {
  const e = entry.trim();
  if (e === "") throw new SelectionError(`empty entry for dimension ${axis} (use ":" for the whole dimension)`, sel);
  if (!e.includes(":")) {
    const i = parseInt53(e, "index", axis, sel);
    const idx = i < 0 ? i + dim : i;
    if (idx < 0 || idx >= dim) {
      throw new SelectionError(`index ${i} is out of bounds for dimension ${axis} of size ${dim}`, sel);
    }
    return { kind: "index", index: idx };
  }
  const parts = e.split(":");
  if (parts.length > 3) throw new SelectionError(`entry ${JSON.stringify(e)} for dimension ${axis} has more than two ':'`, sel);
  const [a = "", b = "", s = ""] = parts;
  let step = 1;
  if (s.trim() !== "") {
    step = parseInt53(s, "step", axis, sel);
    if (step === 0) throw new SelectionError(`step for dimension ${axis} cannot be zero`, sel);
    if (step < 0) throw new SelectionError(`negative step ${step} for dimension ${axis} is not supported`, sel);
  }
  const start = a.trim() === "" ? 0 : clampBound(parseInt53(a, "start", axis, sel), dim);
  const stop = b.trim() === "" ? dim : clampBound(parseInt53(b, "stop", axis, sel), dim);
  return { kind: "slice", start, stop, step, count: sliceCount(start, stop, step) };
}

/** Builds the Selection record from per-dimension entries. */
export function makeSelection(dims: DimSelection[], shape: readonly number[]): Selection {
  const outShape: number[] = [];
  let count = 1;
  let whole = true;
  dims.forEach((d, i) => {
    if (d.kind === "index") {
      whole = false;
    } else {
      outShape.push(d.count);
      count *= d.count;
      if (!(d.start === 0 && d.step === 1 && d.stop === shape[i])) whole = false;
    }
  });
  return { dims, shape: outShape, count, whole };
}

/**
 * Parses `text` against a dataset of `shape` ([] for a scalar, which takes
 * only the empty selection).
 */
export function parseSelection(text: string | null | undefined, shape: readonly number[]): Selection {
  const sel = text ?? "";
  let body = sel.trim();
  if (body.startsWith("[") && body.endsWith("]")) body = body.slice(1, -1).trim();
  const entries = body === "" ? [] : body.split(",");
  // a trailing comma ("0,") is tolerated, as in Python's tuple syntax
  if (entries.length > 1 && entries[entries.length - 1]!.trim() === "") entries.pop();
  if (entries.length > shape.length) {
    throw new SelectionError(
      shape.length === 0
        ? "the dataset is a scalar: it takes no selection"
        : `${entries.length} entries for a dataset of ${shape.length} dimension${shape.length === 1 ? "" : "s"}`,
      sel,
    );
  }
  const dims: DimSelection[] = shape.map((dim, axis) =>
    axis < entries.length ? parseEntry(entries[axis]!, dim, axis, sel) : fullDim(dim),
  );
  return makeSelection(dims, shape);
}

/** The selection as text in the canonical form (`0:10:2,5,:`), e.g. for logs and cache keys. */
export function formatSelection(s: Selection): string {
  return s.dims
    .map((d) => (d.kind === "index" ? String(d.index) : `${d.start}:${d.stop}${d.step === 1 ? "" : `:${d.step}`}`))
    .join(",");
}
