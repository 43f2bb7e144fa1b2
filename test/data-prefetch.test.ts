/**
 * The /slice prefetch (src/service/data/prefetch.ts) against the real service
 * and loopback origin: which reads it starts, and that requestsSent resolves
 * only once those requests are written (undici writes a request on a reused
 * keep-alive socket in the next check phase, not when it is dispatched).
 */
import assert from "node:assert/strict";
import dc from "node:diagnostics_channel";
import { after, before, test } from "node:test";
import { planRead, prefetchPlanned, requestsSent } from "../src/service/data/prefetch.ts";
import { startCorpusService, type CorpusService } from "./support/corpusService.ts";
import { call, testConfig } from "./support/service.ts";

const REL = "synthetic/paged.h5"; // d0, d1: 3,000 float64 each, 6 chunks of 500
const LIMITS = { maxElements: 1_000_000, maxBytes: 64 * 1024 * 1024 };
let svc: CorpusService;
let src: string;

before(async () => {
  svc = await startCorpusService("lindi-prefetch-", (dir) => testConfig(dir, { probeTtlSeconds: 60, inflateThreads: 1 }));
  src = encodeURIComponent(svc.origin.url(REL));
  assert.equal((await call(svc.base, `/lindi?url=${src}`)).status, 200, "index built");
});

after(async () => {
  await svc?.close();
});

test("prefetchPlanned starts the reads of uncached chunks; requestsSent resolves once they are written", async () => {
  // a read of another dataset first: the range reader's keep-alive socket to the origin is then in use
  assert.equal((await call(svc.base, `/slice?url=${src}&path=/d1&select=0:1000&format=bin`)).status, 200);
  const data = svc.app.lindiData;
  const ix = await data.open({ url: svc.origin.url(REL) });
  const plan = planRead(ix, "/d0", "", LIMITS);
  assert.ok(plan, "a plan for a chunked dataset");
  assert.equal(plan.chunks, 6);
  assert.equal(plan.bytes, 3000 * 8);

  const originHost = new URL(svc.origin.baseUrl).host;
  let written = 0;
  const onHeaders = (m: unknown) => {
    const origin = String((m as { request: { origin: unknown } }).request.origin);
    if (origin.includes(originHost)) written++;
  };
  dc.subscribe("undici:client:sendHeaders", onHeaders);
  try {
    const requestsBefore = svc.origin.stats.gets;
    assert.equal(prefetchPlanned(ix, plan), true, "reads started");
    assert.equal(written, 0, "nothing is written synchronously");
    await requestsSent();
    assert.ok(written >= 1, `the prefetch's request is on the wire when requestsSent resolves (${written} written)`);
    // the chunks land in the cache: the same read is then answered without the origin
    const answer = await call(svc.base, `/slice?url=${src}&path=/d0&format=bin`);
    assert.equal(answer.status, 200);
    assert.equal(svc.origin.stats.gets - requestsBefore, written, "readSlice waited for the prefetched chunks instead of fetching them again");
    assert.equal(prefetchPlanned(ix, plan), false, "everything cached: no reads started");
    // the six gzip chunks landed together: all but the first of that burst were inflated on the worker
    const metrics = (await call(svc.base, "/metrics")).body.toString();
    const offloaded = Number(/^lindi_inflate_worker_chunks\{outcome="offloaded"\} (\d+)$/m.exec(metrics)?.[1]);
    assert.ok(offloaded >= 1 && offloaded <= 6 + 1, `chunks inflated on the worker: ${offloaded}`);
    assert.match(metrics, /^lindi_inflate_worker_chunks\{outcome="recovered"\} 0$/m);
  } finally {
    dc.unsubscribe("undici:client:sendHeaders", onHeaders);
  }
});

test("prefetchPlanned leaves one-chunk reads, refused reads and unknown paths to readSlice", async () => {
  const data = svc.app.lindiData;
  data.clearCaches();
  const ix = await data.open({ url: svc.origin.url(REL) });
  const one = planRead(ix, "/d0", "0:10", LIMITS);
  assert.equal(one?.chunks, 1);
  assert.equal(prefetchPlanned(ix, one!), false, "one chunk: readSlice fetches it");
  const tooLarge = planRead(ix, "/d0", "", { maxElements: 10, maxBytes: LIMITS.maxBytes });
  assert.equal(tooLarge?.bytes, 0, "over the element limit: sized 0 (readSlice answers 413)");
  assert.equal(prefetchPlanned(ix, tooLarge!), false);
  assert.equal(planRead(ix, "/no/such/dataset", "", LIMITS), undefined);
});
