import { Hdf5FormatError } from "../errors.ts";
import type { FileIo } from "../reader.ts";
import type { ChunkRecord } from "../types.ts";
import { checkCount, makeRecord, type ChunkIndexContext } from "./common.ts";

/** Entries assumed per node for the first read (2K with the default K = 32). */
const GUESS_ENTRIES = 64;
const MAX_ENTRIES = 65535;
const MAX_DEPTH = 64;

interface Node {
  level: number;
  entries: number;
  keys: { size: number; mask: number; offsets: number[] }[];
  children: (number | null)[];
}

/**
 * Version 1 B-tree of chunks (node type 1). Keys hold each chunk's stored
 * size, filter mask and element offsets (plus a trailing 0 for the element
 * size dimension); leaf children are chunk addresses. Each level's nodes are
 * read concurrently.
 */
export async function listBtreeV1(ctx: ChunkIndexContext): Promise<ChunkRecord[]> {
  const { layout, io } = ctx;
  if (layout.indexAddress === null) return [];
  const rank = layout.chunkShape.length;
  const visited = new Set<number>();
  const out: ChunkRecord[] = [];
  let level: (number | null)[] = [layout.indexAddress];
  let expectedLevel: number | null = null;
  for (let depth = 0; level.length > 0; depth++) {
    if (depth > MAX_DEPTH) throw new Hdf5FormatError(`${ctx.what}: v1 B-tree deeper than ${MAX_DEPTH} levels`);
    const addrs: number[] = [];
    for (const a of level) {
      if (a === null) continue;
      if (visited.has(a)) throw new Hdf5FormatError(`${ctx.what}: v1 B-tree node at ${a} is referenced twice (cycle)`);
      visited.add(a);
      addrs.push(a);
    }
    const nodes = await Promise.all(addrs.map((a) => readNode(io, a, rank, ctx.what)));
    const next: (number | null)[] = [];
    for (let n = 0; n < nodes.length; n++) {
      const node = nodes[n]!;
      const where = `${ctx.what}: v1 B-tree node at ${addrs[n]}`;
      if (expectedLevel !== null && node.level !== expectedLevel) {
        throw new Hdf5FormatError(`${where}: level ${node.level}, expected ${expectedLevel}`);
      }
      if (node.level > 0) {
        next.push(...node.children);
        continue;
      }
      for (let i = 0; i < node.entries; i++) {
        const addr = node.children[i];
        if (addr === null || addr === undefined) continue;
        const key = node.keys[i]!;
        const index: number[] = [];
        for (let d = 0; d < rank; d++) {
          const off = key.offsets[d]!;
          const cd = layout.chunkShape[d]!;
          if (off % cd !== 0) throw new Hdf5FormatError(`${where}: chunk offset ${off} is not a multiple of chunk dimension ${cd}`);
          index.push(off / cd);
        }
        out.push(makeRecord(ctx, index, addr, key.size, key.mask));
      }
      checkCount(ctx, out.length);
    }
    const lvl = nodes[0]?.level ?? 0;
    expectedLevel = lvl - 1;
    level = lvl > 0 ? next : [];
    checkCount(ctx, visited.size + next.length);
  }
  return out;
}

async function readNode(io: FileIo, address: number, rank: number, what: string): Promise<Node> {
  const O = io.ctx.offsetSize;
  const headerSize = 4 + 1 + 1 + 2 + 2 * O;
  const keySize = 4 + 4 + 8 * (rank + 1);
  const bodySize = (n: number): number => (n + 1) * keySize + n * O;
  const label = `${what}: v1 B-tree node`;
  let buf = await io.readUpTo(address, headerSize + bodySize(GUESS_ENTRIES), headerSize, label);
  const h = io.cursor(buf, address, label);
  h.signature("TREE");
  const type = h.u8();
  if (type !== 1) h.fail(`node type ${type}, expected 1 (raw data chunks)`);
  const level = h.u8();
  const entries = h.u16();
  if (entries > MAX_ENTRIES) h.fail(`implausible entry count ${entries}`);
  const need = headerSize + bodySize(entries);
  if (buf.length < need) {
    const rest = await io.read(address + buf.length, need - buf.length, label);
    const joined = new Uint8Array(need);
    joined.set(buf);
    joined.set(rest, buf.length);
    buf = joined;
  }
  const c = io.cursor(buf, address, label);
  c.seek(headerSize);
  const keys: Node["keys"] = [];
  const children: (number | null)[] = [];
  for (let i = 0; i <= entries; i++) {
    const size = c.u32();
    const mask = c.u32();
    const offsets: number[] = [];
    for (let d = 0; d <= rank; d++) offsets.push(c.u64());
    keys.push({ size, mask, offsets });
    if (i < entries) children.push(c.offset());
  }
  return { level, entries, keys, children };
}
