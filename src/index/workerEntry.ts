/**
 * The file piscina loads in each worker thread; it loads worker.ts.
 *
 * Why not worker.ts directly: the project runs TypeScript through tsx, and
 * on Node 20 tsx's ESM hooks (installed by `--import tsx` / the tsx CLI) are
 * not active in worker threads — only its CommonJS hook is. Piscina loads
 * this file with require() (tsx compiles it), and this file's dynamic
 * import() of the ESM worker (which imports the ESM-only h5wasm) fails with
 * ERR_UNKNOWN_FILE_EXTENSION; then tsx's ESM hooks are registered in this
 * thread and the import is retried. Where .ts imports already work (newer
 * Node, or compiled JavaScript) nothing is registered.
 */
import type { WorkerResult, WorkerTask } from "./workerProtocol.ts";

type TaskFn = (task: WorkerTask) => Promise<WorkerResult>;

let loaded: Promise<TaskFn> | null = null;

async function load(): Promise<TaskFn> {
  const url = new URL(`./worker${import.meta.url.slice(import.meta.url.lastIndexOf("."))}`, import.meta.url).href;
  try {
    return ((await import(url)) as { default: TaskFn }).default;
  } catch (e) {
    if ((e as { code?: unknown } | null)?.code !== "ERR_UNKNOWN_FILE_EXTENSION") throw e;
    const { register } = (await import("tsx/esm/api")) as { register: () => unknown };
    register();
    // a different URL: the failed load may be cached under the first one
    return ((await import(`${url}?tsx`)) as { default: TaskFn }).default;
  }
}

export default function runTask(task: WorkerTask): Promise<WorkerResult> {
  loaded ??= load();
  return loaded.then((fn) => fn(task));
}
