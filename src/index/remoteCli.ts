/**
 * Remote inputs of `lindi index`: one builder (worker pool + HTTP client)
 * for all of them, created on the first URL and closed at the end.
 */
import type { LindiDocument } from "../lindi/generate.ts";
import { parsePythonJson } from "../lindi/pythonJson.ts";
import { createIndexBuilder, type IndexBuilderConfig, type RemoteIndexBuilder } from "./builder.ts";

export interface CliRemoteIndexer {
  /** Indexes `input` (an http(s) URL); `opts.url` is written into the refs. */
  index(input: string, opts: { url: string; chunksThreshold: number | null; splitBytes: number | null }): Promise<LindiDocument>;
  close(): Promise<void>;
}

export function createCliRemoteIndexer(config: IndexBuilderConfig = {}): CliRemoteIndexer {
  let builder: RemoteIndexBuilder | null = null;
  return {
    async index(input, opts) {
      builder ??= createIndexBuilder(config);
      const info = await builder.probe(input);
      const result = await builder.build(info, {
        chunksThreshold: opts.chunksThreshold,
        splitBytes: opts.splitBytes,
        refUrl: opts.url,
      });
      // parsed back so the CLI handles local and remote documents alike;
      // stringifyPython(parsePythonJson(text)) reproduces the text exactly
      return parsePythonJson(new TextDecoder().decode(result.json)) as unknown as LindiDocument;
    },
    async close() {
      const b = builder;
      builder = null;
      await b?.close();
    },
  };
}
