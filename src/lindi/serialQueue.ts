/**
 * Runs async operations one after another (a file being rewritten must not
 * see two writers at once); a failed operation does not block the next.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn, fn);
    this.tail = p.catch(() => undefined);
    return p;
  }

  /** Resolves when everything queued so far has finished (failures included). */
  idle(): Promise<void> {
    return this.tail.then(() => undefined);
  }
}
