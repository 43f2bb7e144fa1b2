import { Hdf5FormatError } from "../errors.ts";
import { limitEncSize, log2floor, type FileIo } from "../reader.ts";
import type { ChunkRecord } from "../types.ts";
import { checkCount, makeRecord, type ChunkIndexContext } from "./common.ts";

const MAX_DEPTH = 32;

interface Header {
  type: number;
  nodeSize: number;
  recordSize: number;
  depth: number;
  rootAddress: number | null;
  rootRecords: number;
  totalRecords: number;
}

interface NodeRef {
  address: number;
  records: number;
  depth: number;
}

/**
 * Version 2 B-tree of chunks: record type 10 (unfiltered: address, scaled
 * offsets) or 11 (filtered: address, chunk size, filter mask, scaled offsets).
 * Records live in internal nodes as well as leaves. Each level is read
 * concurrently, each node with one exact read (walkBtreeV2, which also serves
 * other record types: readBtreeV2Records).
 */
export async function listBtreeV2(ctx: ChunkIndexContext): Promise<ChunkRecord[]> {
  const { layout, io } = ctx;
  if (layout.indexAddress === null) return [];
  const hdr = await readBtreeV2Header(io, layout.indexAddress, ctx.what, [10, 11]);
  const rank = layout.chunkShape.length;
  const O = io.ctx.offsetSize;
  const filtered = hdr.type === 11;
  const sizeLen = filtered ? hdr.recordSize - O - 4 - 8 * rank : 0;
  if (sizeLen < 0 || (!filtered && hdr.recordSize !== O + 8 * rank) || sizeLen > 8) {
    throw new Hdf5FormatError(
      `${ctx.what}: v2 B-tree record size ${hdr.recordSize} does not fit type ${hdr.type} records of rank ${rank}`,
    );
  }
  if (hdr.rootAddress === null || hdr.totalRecords === 0) return [];
  checkCount(ctx, hdr.totalRecords);

  const out: ChunkRecord[] = [];
  await walkBtreeV2(io, hdr, ctx.what, (records, nextLevelNodes) => {
    for (const rec of records) {
      let size = layout.chunkBytes;
      let mask = 0;
      const c = io.cursor(rec, -1, `${ctx.what}: v2 B-tree chunk record`);
      const addr = c.offset();
      if (filtered) {
        size = c.uvar(sizeLen);
        mask = c.u32();
      }
      const index: number[] = [];
      for (let d = 0; d < rank; d++) index.push(c.u64());
      if (addr !== null) out.push(makeRecord(ctx, index, addr, size, mask));
    }
    checkCount(ctx, out.length + nextLevelNodes);
    if (out.length > hdr.totalRecords) {
      throw new Hdf5FormatError(`${ctx.what}: v2 B-tree holds more records than its header says (${hdr.totalRecords})`);
    }
  });
  return out;
}

/** Every record of the v2 B-tree at `address` (any record type), level by level; `what` names it in errors. */
export async function readBtreeV2Records(io: FileIo, address: number, what: string): Promise<{ type: number; records: Uint8Array[] }> {
  const hdr = await readBtreeV2Header(io, address, what);
  const records: Uint8Array[] = [];
  if (hdr.rootAddress !== null && hdr.rootRecords > 0) await walkBtreeV2(io, hdr, what, (recs) => records.push(...recs));
  return { type: hdr.type, records };
}

/**
 * Reads the tree from the root down, each level's nodes concurrently, and
 * gives `visit` each level's records and how many nodes the next level has.
 */
async function walkBtreeV2(io: FileIo, hdr: Header, what: string, visit: (records: Uint8Array[], nextLevelNodes: number) => void): Promise<void> {
  if (hdr.rootAddress === null) return;
  const info = nodeInfo(hdr, io.ctx.offsetSize);
  const visited = new Set<number>();
  let level: NodeRef[] = [{ address: hdr.rootAddress, records: hdr.rootRecords, depth: hdr.depth }];
  while (level.length > 0) {
    for (const n of level) {
      if (visited.has(n.address)) throw new Hdf5FormatError(`${what}: v2 B-tree node at ${n.address} referenced twice`);
      visited.add(n.address);
    }
    const results = await Promise.all(level.map((n) => readNode(io, hdr, info, n, what)));
    const next: NodeRef[] = [];
    const records: Uint8Array[] = [];
    for (const r of results) {
      records.push(...r.records);
      next.push(...r.children);
    }
    visit(records, next.length);
    level = next;
  }
}

/** A v2 B-tree header; `types`, when given, are the record types accepted. */
async function readBtreeV2Header(io: FileIo, address: number, what: string, types?: readonly number[]): Promise<Header> {
  const { offsetSize: O, lengthSize: L } = io.ctx;
  const label = `${what}: v2 B-tree header`;
  const buf = await io.read(address, 4 + 1 + 1 + 4 + 2 + 2 + 1 + 1 + O + 2 + L + 4, label);
  const c = io.cursor(buf, address, label);
  c.signature("BTHD");
  const version = c.u8();
  if (version !== 0) c.fail(`unsupported version ${version}`);
  const type = c.u8();
  if (types && !types.includes(type)) c.fail(`record type ${type}, expected ${types.join(" or ")}`);
  const nodeSize = c.u32();
  const recordSize = c.u16();
  const depth = c.u16();
  c.skip(2); // split, merge percent
  const rootAddress = c.offset();
  const rootRecords = c.u16();
  const totalRecords = c.length();
  if (recordSize === 0 || nodeSize <= 10 + recordSize) c.fail(`invalid node size ${nodeSize} / record size ${recordSize}`);
  if (depth > MAX_DEPTH) c.fail(`implausible depth ${depth}`);
  return { type, nodeSize, recordSize, depth, rootAddress, rootRecords, totalRecords };
}

/** Per-depth sizes of the child pointer fields (H5B2hdr.c: max_nrec_size, cum_max_nrec_size). */
interface NodeInfo {
  maxRecordsSize: number;
  /** Bytes of the "total records in child subtree" field for children at depth d-1 (index d). */
  cumSize: number[];
  maxRecords: number[];
}

function nodeInfo(hdr: Header, O: number): NodeInfo {
  // Leaf and internal node prefixes: signature, version, type + checksum = 10 bytes.
  const prefix = 10;
  const leafMax = Math.floor((hdr.nodeSize - prefix) / hdr.recordSize);
  const maxRecordsSize = limitEncSize(leafMax);
  const maxRecords = [leafMax];
  const cumMax: bigint[] = [BigInt(leafMax)];
  const cumSize = [0];
  for (let d = 1; d <= hdr.depth; d++) {
    const ptrSize = O + maxRecordsSize + (d > 1 ? cumSize[d - 1]! : 0);
    const max = Math.floor((hdr.nodeSize - (prefix + ptrSize)) / (hdr.recordSize + ptrSize));
    if (max <= 0) throw new Hdf5FormatError(`v2 B-tree: node size ${hdr.nodeSize} too small for depth ${hdr.depth}`);
    maxRecords.push(max);
    const cum = BigInt(max + 1) * cumMax[d - 1]! + BigInt(max);
    cumMax.push(cum);
    cumSize.push(Math.floor(log2floor(cum) / 8) + 1);
  }
  return { maxRecordsSize, cumSize, maxRecords };
}

async function readNode(
  io: FileIo,
  hdr: Header,
  info: NodeInfo,
  ref: NodeRef,
  what: string,
): Promise<{ records: Uint8Array[]; children: NodeRef[] }> {
  const O = io.ctx.offsetSize;
  const internal = ref.depth > 0;
  const label = `${what}: v2 B-tree ${internal ? "internal" : "leaf"} node`;
  if (ref.records > info.maxRecords[ref.depth]!) {
    throw new Hdf5FormatError(`${label} at ${ref.address}: ${ref.records} records exceed the maximum ${info.maxRecords[ref.depth]}`);
  }
  const ptrSize = O + info.maxRecordsSize + (ref.depth > 1 ? info.cumSize[ref.depth - 1]! : 0);
  const size = 6 + ref.records * hdr.recordSize + (internal ? (ref.records + 1) * ptrSize : 0) + 4;
  const buf = await io.read(ref.address, size, label);
  const c = io.cursor(buf, ref.address, label);
  c.signature(internal ? "BTIN" : "BTLF");
  const version = c.u8();
  if (version !== 0) c.fail(`unsupported version ${version}`);
  const type = c.u8();
  if (type !== hdr.type) c.fail(`record type ${type} differs from the header's ${hdr.type}`);
  const records: Uint8Array[] = [];
  for (let i = 0; i < ref.records; i++) records.push(c.bytes(hdr.recordSize));
  const children: NodeRef[] = [];
  if (internal) {
    for (let i = 0; i <= ref.records; i++) {
      const address = c.requiredOffset("child node address");
      const n = c.uvar(info.maxRecordsSize);
      if (ref.depth > 1) c.skip(info.cumSize[ref.depth - 1]!);
      children.push({ address, records: n, depth: ref.depth - 1 });
    }
  }
  return { records, children };
}
