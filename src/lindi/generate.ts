import type { Hdf5LayoutReader, ChunkRecord } from "../hdf5/layout/index.ts";
import type { ExternalFileOpener } from "../hdf5/rawData.ts";
import { isInlineDataset, type H5Model, type H5Node } from "../hdf5/walk.ts";
import { withFallbackAttrs, withFallbackValues } from "./fallbackValues.ts";
import { convertAttributes, type ReferenceContext } from "./attributes.ts";
import { addByteRangeRefs, isExternalArrayLink, planByteRangeArray, type ByteRangeOptions } from "./byteRangeArray.ts";
import { encodeBloscLz4 } from "./codecs/blosc.ts";
import { LindiConversionError } from "./errors.ts";
import { forEachLimited } from "./forEachLimited.ts";
import { buildInlineArray } from "./inlineArray.ts";
import { encodeInlineBytes } from "./inlineBytes.ts";
import type { PyJson } from "./pythonJson.ts";
import { applyTemplates } from "./templates.ts";

export interface GenerateOptions extends ByteRangeOptions {
  /** The URL written into every `[url, offset, length]` ref and external array link. */
  url: string;
  /** How many datasets' layouts are read at once (many in flight helps remote sources). */
  concurrency?: number;
  /** Opens files named by External Data Files messages (local files only); absent = not readable. */
  openExternalFile?: ExternalFileOpener;
}

export const DEFAULT_OPTIONS: ByteRangeOptions = { chunksThreshold: 1000, splitBytes: 20_000_000 };

/** A LINDI document (the `.lindi.json` content). */
export interface LindiDocument {
  refs: Record<string, PyJson>;
  templates?: Record<string, string>;
  version: 1;
  generationMetadata?: PyJson;
}

type DatasetNode = Extract<H5Node, { kind: "dataset" }>;

/** Zarr key of an HDF5 path: no leading slash, root is "". */
export function zarrKey(path: string): string {
  return path.replace(/^\/+/, "");
}

function join(key: string, name: string): string {
  return key === "" ? name : `${key}/${name}`;
}

function setAttrs(refs: Record<string, PyJson>, key: string, attrs: Record<string, PyJson>): void {
  if (Object.keys(attrs).length > 0) refs[join(key, ".zattrs")] = attrs;
}

async function emitDataset(
  refs: Record<string, PyJson>,
  rangeRefs: PyJson[][],
  node: DatasetNode,
  ctx: ReferenceContext,
  layoutReader: Hdf5LayoutReader,
  opts: GenerateOptions,
): Promise<void> {
  const key = zarrKey(node.path);
  if (node.shape === null) throw new LindiConversionError(node.path, "datasets with a null dataspace are not supported by LINDI");
  const attrs = convertAttributes(await withFallbackAttrs(node.attrs, node.address, layoutReader), node.path, ctx);
  const externalLink = isExternalArrayLink(node.shape, node.chunks, opts.chunksThreshold);
  if (externalLink) attrs._EXTERNAL_ARRAY_LINK = { link_type: "hdf5_dataset", name: key, url: opts.url };

  if (isInlineDataset(node.dtype, node.shape)) {
    const inline = buildInlineArray(await withFallbackValues(node, layoutReader, opts.openExternalFile), ctx);
    Object.assign(attrs, inline.extraAttrs);
    setAttrs(refs, key, attrs);
    refs[join(key, ".zarray")] = inline.zarray;
    if (inline.chunk && !externalLink) {
      const frame = await encodeBloscLz4(inline.chunk.bytes, inline.chunk.typesize);
      refs[join(key, inline.chunk.key)] = encodeInlineBytes(frame);
    }
    return;
  }

  setAttrs(refs, key, attrs);
  const layout = await layoutReader.readDataset(node.address);
  const plan = planByteRangeArray(node.path, node.shape, node.dtype, layout, externalLink, opts);
  refs[join(key, ".zarray")] = plan.zarray;
  let chunks: ChunkRecord[] | null = null;
  if (plan.refs.kind === "chunks" || (plan.refs.kind === "split" && plan.refs.offset < 0)) {
    chunks = await layoutReader.listChunks(layout);
  }
  if (plan.refs.kind === "split" && plan.refs.offset < 0) {
    const first = chunks?.find((c) => c.index.every((i) => i === 0));
    if (!first) throw new LindiConversionError(node.path, "its only chunk was never written");
    plan.refs = { ...plan.refs, offset: first.offset, size: first.size };
  }
  addByteRangeRefs(refs, key, node.shape.length, plan, opts.url, chunks, rangeRefs);
}

/**
 * Builds the LINDI document of a walked file (phase A's model) with the
 * byte layout of its datasets (phase B: the layout reader). Fails with
 * LindiConversionError where the reference implementation fails (spec §6.8),
 * naming the object and the reason.
 */
export async function buildLindiDocument(model: H5Model, layoutReader: Hdf5LayoutReader, opts: GenerateOptions): Promise<LindiDocument> {
  const refs: Record<string, PyJson> = {};
  const ctx: ReferenceContext = { rootObjectId: model.rootObjectId, objectIds: model.objectIds };
  const datasets: DatasetNode[] = [];
  for (const node of model.nodes) {
    switch (node.kind) {
      case "group": {
        const key = zarrKey(node.path);
        setAttrs(refs, key, convertAttributes(await withFallbackAttrs(node.attrs, node.address, layoutReader), node.path, ctx));
        refs[join(key, ".zgroup")] = { zarr_format: 2 };
        break;
      }
      case "soft-link": {
        if (node.dangling) throw new LindiConversionError(node.path, `dangling soft link to ${node.target}`);
        const key = zarrKey(node.path);
        refs[join(key, ".zattrs")] = { _SOFT_LINK: { path: node.target } };
        refs[join(key, ".zgroup")] = { zarr_format: 2 };
        break;
      }
      case "external-link":
        throw new LindiConversionError(node.path, `external links are not supported by LINDI (to ${node.file}:${node.target})`);
      case "unsupported":
        throw new LindiConversionError(node.path, node.reason);
      case "dataset":
        datasets.push(node);
        break;
    }
  }
  const rangeRefs: PyJson[][] = [];
  await forEachLimited(datasets, opts.concurrency ?? 32, (node) => emitDataset(refs, rangeRefs, node, ctx, layoutReader, opts));
  const templates = applyTemplates(refs, {}, rangeRefs);
  const doc: LindiDocument = { refs, version: 1 };
  if (Object.keys(templates).length > 0) doc.templates = templates;
  return doc;
}
