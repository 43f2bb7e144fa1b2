/**
 * The loopback range origin in its own process, so that a benchmark's origin
 * does not share an event loop (and CPU time slices) with the client it
 * measures. Controlled over IPC: { setFaults }, { resetStats }, { stats }.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { startRangeOrigin, type RangeOrigin } from "../../test/support/rangeOrigin.ts";

type Message = { id: number; op: "setFaults"; faults: Record<string, unknown> } | { id: number; op: "resetStats" | "stats" | "close" };

export interface OriginProcess {
  url(relPath: string): string;
  setFaults(faults: Record<string, unknown>): Promise<void>;
  resetStats(): Promise<void>;
  stats(): Promise<RangeOrigin["stats"]>;
  close(): Promise<void>;
}

export async function startOriginProcess(root: string): Promise<OriginProcess> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [root], { execArgv: ["--import", "tsx"] });
  let next = 0;
  const pending = new Map<number, (v: unknown) => void>();
  const base = await new Promise<string>((ok, fail) => {
    child.once("message", (m) => ok((m as { base: string }).base));
    child.once("exit", (code) => fail(new Error(`origin process exited (${code})`)));
  });
  child.on("message", (m) => {
    const { id, value } = m as { id: number; value: unknown };
    pending.get(id)?.(value);
    pending.delete(id);
  });
  const call = (msg: Omit<Message, "id">) =>
    new Promise<unknown>((ok) => {
      const id = ++next;
      pending.set(id, ok);
      child.send({ ...msg, id });
    });
  return {
    url: (rel) => `${base}/${rel.split("/").map(encodeURIComponent).join("/")}`,
    setFaults: async (faults) => void (await call({ op: "setFaults", faults } as never)),
    resetStats: async () => void (await call({ op: "resetStats" })),
    stats: async () => (await call({ op: "stats" })) as RangeOrigin["stats"],
    close: async () => {
      await call({ op: "close" });
      child.disconnect();
    },
  };
}

// the child: serve, answer control messages
if (process.send && process.argv[2] && import.meta.url === `file://${process.argv[1]}`) {
  const origin = await startRangeOrigin({ root: process.argv[2] });
  process.send({ base: origin.url("").replace(/\/$/, "") });
  process.on("message", async (m: Message) => {
    let value: unknown = null;
    if (m.op === "setFaults") origin.setFaults(m.faults as never);
    else if (m.op === "resetStats") origin.resetStats();
    else if (m.op === "stats") value = origin.stats;
    else if (m.op === "close") await origin.close();
    process.send!({ id: m.id, value });
  });
}
