/**
 * Lets a precompute job stop the builds it started, although they run in
 * the service's shared BuildManager: the builder given to the service is
 * wrapped, and a build whose source a job registered gets the job's
 * AbortSignal too. Builds a viewer started (and the job only joined) are
 * never registered, so cancelling a job does not cut them; a viewer that
 * joined a job's build gets 503 + Retry-After when the job is cancelled and
 * its retry starts a new build.
 *
 * Registration is by the SourceInfo object the job resolved: BuildManager
 * passes that very object to `builder.build`.
 */
import type { IndexBuilder, SourceInfo } from "../index/types.ts";

export class BuildCancellation {
  private readonly owners = new WeakMap<SourceInfo, AbortSignal>();

  /** Builds of `source` (started from now until the returned function is called) also stop on `signal`. */
  register(source: SourceInfo, signal: AbortSignal): () => void {
    this.owners.set(source, signal);
    return () => {
      if (this.owners.get(source) === signal) this.owners.delete(source);
    };
  }

  /** The builder to give the service. */
  wrap(builder: IndexBuilder): IndexBuilder {
    return {
      probe: (url, signal) => builder.probe(url, signal),
      build: (source, opts, signal) => {
        const owner = this.owners.get(source);
        if (!owner) return builder.build(source, opts, signal);
        if (owner.aborted) return Promise.reject(owner.reason);
        return builder.build(source, opts, signal ? AbortSignal.any([signal, owner]) : owner);
      },
      close: () => builder.close(),
    };
  }
}
