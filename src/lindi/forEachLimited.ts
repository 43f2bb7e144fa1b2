/**
 * Runs `fn` over `items` with at most `limit` in flight and starts no more
 * after an error. What it throws is the error of the earliest failing item in
 * iteration order, not the first to fail in time: every item before a failed
 * one was already started, so the answer does not depend on timing (a file
 * with two bad datasets names the same one whether it is read locally or
 * remotely).
 */
export async function forEachLimited<T>(items: Iterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const it = items[Symbol.iterator]();
  let started = 0;
  const state: { failed?: { index: number; error: unknown } } = {};
  const worker = async () => {
    while (!state.failed) {
      const n = it.next();
      if (n.done) return;
      const index = started++;
      try {
        await fn(n.value);
      } catch (error) {
        // (read again: another worker may have failed while this one waited)
        const prior = state.failed as { index: number } | undefined;
        if (!prior || index < prior.index) state.failed = { index, error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
  if (state.failed) throw state.failed.error;
}
