/** forEachLimited (src/lindi/forEachLimited.ts): bounded concurrency, and the same error whatever the timing. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { forEachLimited } from "../src/lindi/forEachLimited.ts";

test("forEachLimited: at most `limit` in flight, every item once, in order of start", async () => {
  let inFlight = 0;
  let most = 0;
  const started: number[] = [];
  await forEachLimited([5, 1, 4, 2, 3, 0, 2, 1], 3, async (ms) => {
    started.push(ms);
    most = Math.max(most, ++inFlight);
    await sleep(ms);
    inFlight--;
  });
  assert.deepEqual(started, [5, 1, 4, 2, 3, 0, 2, 1]);
  assert.equal(most, 3);
  await forEachLimited([], 4, async () => assert.fail("no items"));
});

test("forEachLimited: throws the earliest failing item's error, even when a later one fails first; starts no more after", async () => {
  const started: string[] = [];
  let cFailed!: () => void;
  const afterC = new Promise<void>((r) => (cFailed = r));
  // c fails first in time; b, earlier in the list, fails after it: b's error is the answer
  const run = forEachLimited(["a", "b", "c", "d", "e"], 3, async (name) => {
    started.push(name);
    if (name === "c") {
      await sleep(1);
      cFailed();
      throw new Error("c failed");
    }
    await afterC;
    await sleep(5);
    if (name === "b") throw new Error("b failed");
  });
  await assert.rejects(run, /^Error: b failed$/);
  assert.deepEqual(started, ["a", "b", "c"], "once c failed, nothing new started (not even when a finished)");
});
