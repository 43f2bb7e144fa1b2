/**
 * The benchmarks that run the service in their own process run it with the
 * node flags production uses (package.json's start script, which the image's
 * CMD repeats; test/docker.test.ts checks they agree): a benchmark started
 * without them starts itself again with them.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** The V8/node flags of `npm start` (e.g. --initial-heap-size=128), without the loader. */
export function serviceNodeFlags(): string[] {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { scripts: { start: string } };
  const words = pkg.scripts.start.split(/\s+/);
  if (words[0] !== "node") throw new Error(`package.json start does not run node: ${pkg.scripts.start}`);
  const flags: string[] = [];
  for (let i = 1; i < words.length && words[i]!.startsWith("--"); i++) {
    if (words[i] === "--import") i++; // the loader, which this process has already
    else flags.push(words[i]!);
  }
  return flags;
}

/** Re-runs this process with the service's node flags when it lacks some (then exits with the child's status). */
export function runWithServiceFlags(): void {
  const missing = serviceNodeFlags().filter((f) => !process.execArgv.includes(f));
  if (missing.length === 0) return;
  const child = spawnSync(process.execPath, [...missing, ...process.execArgv, ...process.argv.slice(1)], { stdio: "inherit" });
  process.exit(child.status ?? 1);
}
