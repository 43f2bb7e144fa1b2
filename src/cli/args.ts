/** Parses a numeric option that may also be "none" (disabled). */
export function parseLimit(name: string, value: string | undefined, fallback: number | null): number | null {
  if (value === undefined) return fallback;
  if (value === "none") return null;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a non-negative integer or "none", got ${JSON.stringify(value)}`);
  return n;
}

/** A command line that cannot be run as given; main prints it with the usage and exits 2. */
export class UsageError extends Error {}
