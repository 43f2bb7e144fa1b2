import { Hdf5FormatError } from "./errors.ts";
import { decodeDataspace } from "./messages/dataspace.ts";
import { decodeDatatype } from "./messages/datatype.ts";
import { decodeExternalFiles, MSG_EXTERNAL_FILES } from "./messages/external.ts";
import { decodeFillValue, decodeOldFillValue } from "./messages/fillValue.ts";
import { decodeFilterPipeline } from "./messages/filterPipeline.ts";
import { decodeLayout } from "./messages/layout.ts";
import { decodeSharedRef, MSG_FLAG_SHARED } from "./messages/shared.ts";
import { readObjectHeader, type RawMessage } from "./objectHeader.ts";
import { product, type FileIo } from "./reader.ts";
import type { SohmResolver } from "./sohm.ts";
import type { DatasetLayoutInfo, FillValueInfo, StorageLayout } from "./types.ts";

export const MSG_DATASPACE = 0x0001;
export const MSG_DATATYPE = 0x0003;
export const MSG_OLD_FILL = 0x0004;
export const MSG_FILL = 0x0005;
export const MSG_LAYOUT = 0x0008;
export const MSG_PIPELINE = 0x000b;

/** Limit on chains of shared messages (shared -> object header -> shared ...). */
const MAX_SHARED_DEPTH = 8;

/** A message body after following "shared" indirections. */
interface Body {
  data: Uint8Array;
  position: number;
}

export interface DatasetReadContext {
  io: FileIo;
  sohm: SohmResolver;
}

/**
 * Returns the body of a message, following the shared-message flag to another
 * object header (committed datatypes) or to the SOHM heap.
 */
async function resolveBody(rc: DatasetReadContext, msg: RawMessage, depth = 0): Promise<Body> {
  if (!(msg.flags & MSG_FLAG_SHARED)) return { data: msg.data, position: msg.position };
  if (depth >= MAX_SHARED_DEPTH) throw new Hdf5FormatError(`shared message chain longer than ${MAX_SHARED_DEPTH}`);
  const ref = decodeSharedRef(msg.data, rc.io.ctx, msg.position, msg.type);
  if (ref.kind === "sohm") {
    const data = await rc.sohm.resolve(msg.type, ref.heapId);
    return { data, position: -1 };
  }
  const target = await readObjectHeader(rc.io, ref.address);
  // The old fill value message may be shared as the new one and vice versa only in theory; match the type.
  const found = target.messages.find((m) => m.type === msg.type);
  if (!found) {
    throw new Hdf5FormatError(
      `shared message of type 0x${msg.type.toString(16)} points to object header ${ref.address}, which has no such message`,
    );
  }
  return resolveBody(rc, found, depth + 1);
}

function defaultAllocTime(layout: StorageLayout): number {
  // HDF5 defaults: compact early, contiguous late, chunked incremental.
  return layout.kind === "compact" ? 1 : layout.kind === "contiguous" ? 2 : 3;
}

/** Reads a dataset's object header and decodes everything layout-related. */
export async function readDatasetInfo(rc: DatasetReadContext, address: number): Promise<DatasetLayoutInfo> {
  const { io } = rc;
  const oh = await readObjectHeader(io, address);
  const first = (type: number): RawMessage | undefined => oh.messages.find((m) => m.type === type);
  const layoutMsg = first(MSG_LAYOUT);
  const spaceMsg = first(MSG_DATASPACE);
  const typeMsg = first(MSG_DATATYPE);
  const what = `object header at ${address}`;
  if (!layoutMsg) throw new Hdf5FormatError(`${what} is not a dataset: no data layout message`);
  if (!spaceMsg) throw new Hdf5FormatError(`${what}: dataset without a dataspace message`);
  if (!typeMsg) throw new Hdf5FormatError(`${what}: dataset without a datatype message`);
  const fillMsg = first(MSG_FILL);
  const oldFillMsg = first(MSG_OLD_FILL);
  const pipelineMsg = first(MSG_PIPELINE);

  const [space, dtype, layoutBody, fillBody, oldFillBody, pipelineBody] = await Promise.all([
    resolveBody(rc, spaceMsg),
    resolveBody(rc, typeMsg),
    resolveBody(rc, layoutMsg),
    fillMsg ? resolveBody(rc, fillMsg) : null,
    oldFillMsg ? resolveBody(rc, oldFillMsg) : null,
    pipelineMsg ? resolveBody(rc, pipelineMsg) : null,
  ]);
  const dataspace = decodeDataspace(space.data, io.ctx, space.position);
  const datatype = decodeDatatype(dtype.data, io.ctx, dtype.position);
  const decoded = decodeLayout(layoutBody.data, io.ctx, layoutBody.position);
  const filters = pipelineBody ? decodeFilterPipeline(pipelineBody.data, io.ctx, pipelineBody.position) : [];

  let layout: StorageLayout;
  if (decoded.kind === "contiguous" && decoded.size === null) {
    // Layout v1/v2 store no size: it is the whole dataspace.
    const n = dataspace.shape ? product(dataspace.shape) : 0;
    layout = { kind: "contiguous", address: decoded.address, size: n * datatype.size };
  } else if (decoded.kind === "contiguous") {
    layout = { kind: "contiguous", address: decoded.address, size: decoded.size ?? 0 };
  } else {
    layout = decoded;
  }
  if (layout.kind === "chunked" && dataspace.shape && layout.chunkShape.length !== dataspace.shape.length) {
    throw new Hdf5FormatError(
      `${what}: chunk rank ${layout.chunkShape.length} differs from dataspace rank ${dataspace.shape.length}`,
    );
  }

  let fillValue: FillValueInfo;
  if (fillBody) fillValue = decodeFillValue(fillBody.data, io.ctx, fillBody.position);
  else if (oldFillBody) fillValue = decodeOldFillValue(oldFillBody.data, io.ctx, oldFillBody.position);
  else {
    fillValue = {
      defined: false,
      bytes: null,
      allocTime: defaultAllocTime(layout),
      fillTime: 2,
      status: "default",
      source: null,
    };
  }
  if (fillValue.source === "old-fill-value") fillValue.allocTime = defaultAllocTime(layout);

  const external = oh.messages.find((m) => m.type === MSG_EXTERNAL_FILES);
  const info: DatasetLayoutInfo = {
    objectHeaderAddress: address,
    shape: dataspace.shape,
    maxShape: dataspace.maxShape,
    elementSize: datatype.size,
    datatype,
    layout,
    filters,
    fillValue,
    externalFiles: external !== undefined,
  };
  if (external) info.externalSegments = await decodeExternalFiles(io, external.data, external.position);
  return info;
}
