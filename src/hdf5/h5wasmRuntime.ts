import h5wasm from "h5wasm";
import type { H5Module } from "./h5wasmTypes.ts";
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

/**
 * The h5wasm module, loaded once per thread. The throwing error handler is
 * switched on: without it a missing filter silently returns garbage.
 */
let modulePromise: Promise<H5Module> | null = null;

export function loadH5wasm(): Promise<H5Module> {
  if (!modulePromise) {
    modulePromise = h5wasm.ready.then((m) => {
      m.activate_throwing_error_handler();
      return m;
    });
  }
  return modulePromise;
}

/** Fills `target` with the file bytes at `position`; returns how many it filled. */
export type SyncReader = (target: Uint8Array, position: number) => number;

let mountCounter = 0;

/**
 * Puts a read-only file into h5wasm's in-memory filesystem whose bytes are
 * not copied in: every read HDF5 makes calls `reader` synchronously. This is
 * how a local file is opened without loading it whole, and (with a blocking
 * block cache behind `reader`) how a remote file is read.
 */
export function mountLazyFile(m: H5Module, size: number, reader: SyncReader): string {
  // Emscripten's FS object is untyped in h5wasm's declarations.
  const FS = m.FS as unknown as EmscriptenFs;
  const name = `lazy-${process.pid}-${++mountCounter}.h5`;
  const node = FS.createFile("/", name, {}, true, false);
  Object.defineProperty(node, "usedBytes", { get: () => size });
  const ops: Record<string, unknown> = { ...node.stream_ops };
  ops.read = (_stream: unknown, heap: Int8Array, offset: number, length: number, position: number) => {
    if (position >= size) return 0;
    const n = Math.min(length, size - position);
    return reader(new Uint8Array(heap.buffer, heap.byteOffset + offset, n), position);
  };
  ops.write = () => {
    throw new FS.ErrnoError(63);
  };
  node.stream_ops = ops;
  return "/" + name;
}

export function unmountLazyFile(m: H5Module, path: string): void {
  const FS = m.FS as unknown as EmscriptenFs;
  try {
    FS.unlink(path);
  } catch {
    // already gone
  }
}

/** A SyncReader over a local file descriptor (positioned reads, no buffering). */
export function localFileReader(path: string): { size: number; reader: SyncReader; close: () => void } {
  const fd = openSync(path, "r");
  const size = fstatSync(fd).size;
  const reader: SyncReader = (target, position) => {
    let done = 0;
    while (done < target.length) {
      const n = readSync(fd, target, done, target.length - done, position + done);
      if (n === 0) break;
      done += n;
    }
    return done;
  };
  return { size, reader, close: () => closeSync(fd) };
}

interface EmscriptenFs {
  createFile(parent: string, name: string, props: object, canRead: boolean, canWrite: boolean): {
    stream_ops: Record<string, unknown>;
  };
  unlink(path: string): void;
  ErrnoError: new (errno: number) => Error;
}
