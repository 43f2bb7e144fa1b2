/**
 * Resolves an HDF5 path (`acquisition/ts/data`) to the object header address
 * of the object it names, reading only the group structures on the way with
 * exact byte ranges (so it works on remote files through a ByteSource).
 *
 * The layout reader (src/hdf5/layout) starts from an object address, which the
 * generator gets from h5wasm; an `_EXTERNAL_ARRAY_LINK` only names the dataset
 * by path, hence this small group walker. It understands all three ways HDF5
 * stores the links of a group:
 *
 *   - old-style groups: Symbol Table message → v1 B-tree (type 0) → symbol
 *     table nodes ("SNOD") with names in a local heap ("HEAP");
 *   - compact new-style groups: Link messages in the object header;
 *   - dense new-style groups: Link Info message → fractal heap of link
 *     messages, indexed by a v2 B-tree of name hashes (record type 5).
 *
 * Hard and soft links are followed (soft targets relative to the group that
 * holds the link); external links are refused.
 */
import { readBtreeV2Records } from "../hdf5/layout/chunkIndex/btreeV2.ts";
import { Hdf5FormatError } from "../hdf5/layout/errors.ts";
import { readFractalHeapHeader, readFractalHeapObject, type FractalHeapHeader } from "../hdf5/layout/fractalHeap.ts";
import type { Hdf5LayoutReader } from "../hdf5/layout/index.ts";
import { readObjectHeader } from "../hdf5/layout/objectHeader.ts";
import { FileIo } from "../hdf5/layout/reader.ts";
import { lookup3 } from "../hdf5/lookup3.ts";

const MSG_LINK_INFO = 0x0002;
const MSG_LINK = 0x0006;
const MSG_SYMBOL_TABLE = 0x0011;

const MAX_SOFT_HOPS = 16;
const MAX_BTREE_DEPTH = 64;

/** A path component that does not exist (or an external link on the way). */
export class Hdf5PathError extends Error {
  override readonly name = "Hdf5PathError";
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
  }
}

type Link =
  | { kind: "hard"; address: number }
  | { kind: "soft"; target: string }
  | { kind: "external"; file: string; target: string };

const utf8 = new TextDecoder("utf-8");

function parseLinkMessage(io: FileIo, data: Uint8Array, position: number): { name: string; link: Link } {
  const c = io.cursor(data, position, "link message");
  const version = c.u8();
  if (version !== 1) c.fail(`unsupported link message version ${version}`);
  const flags = c.u8();
  const type = flags & 0x08 ? c.u8() : 0;
  if (flags & 0x04) c.skip(8); // creation order
  if (flags & 0x10) c.skip(1); // character set
  const nameLength = c.uvar(1 << (flags & 0x03));
  const name = utf8.decode(c.bytes(nameLength));
  switch (type) {
    case 0:
      return { name, link: { kind: "hard", address: c.requiredOffset("hard link address") } };
    case 1: {
      const n = c.u16();
      return { name, link: { kind: "soft", target: utf8.decode(c.bytes(n)) } };
    }
    case 64: {
      const n = c.u16();
      const body = c.bytes(n);
      const parts = utf8.decode(body.subarray(1)).split("\0");
      return { name, link: { kind: "external", file: parts[0] ?? "", target: parts[1] ?? "" } };
    }
  }
  return c.fail(`unsupported link type ${type}`);
}

// ---------------------------------------------------------------------------------------
// old-style groups

async function readLocalHeapData(io: FileIo, address: number): Promise<Uint8Array> {
  const { offsetSize: O, lengthSize: L } = io.ctx;
  const buf = await io.read(address, 8 + 2 * L + O, "local heap");
  const c = io.cursor(buf, address, "local heap");
  c.signature("HEAP");
  c.skip(4); // version, reserved
  const size = c.length();
  c.length(); // free list head
  const dataAddress = c.requiredOffset("local heap data segment");
  return io.read(dataAddress, size, "local heap data segment");
}


const encoder = new TextEncoder();

/** HDF5 orders group B-tree keys with strcmp: compare the UTF-8 bytes. */
function compareNames(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

function heapName(heap: Uint8Array, offset: number): Uint8Array {
  if (offset >= heap.length) throw new Hdf5FormatError(`local heap offset ${offset} outside the heap (${heap.length} bytes)`);
  let end = heap.indexOf(0, offset);
  if (end < 0) end = heap.length;
  return heap.subarray(offset, end);
}

/**
 * Looks `name` up in an old-style group: the v1 B-tree's keys are the
 * largest names of their children (key i+1 bounds child i), so only one
 * child per level is read, then one symbol table node is scanned.
 */
async function findInSymbolTable(io: FileIo, btreeAddress: number, heapAddress: number, name: string): Promise<Link | null> {
  const { offsetSize: O, lengthSize: L } = io.ctx;
  const heap = await readLocalHeapData(io, heapAddress);
  const want = encoder.encode(name);
  let addr = btreeAddress;
  let snod: number | null = null;
  for (let depth = 0; snod === null; depth++) {
    if (depth > MAX_BTREE_DEPTH) throw new Hdf5FormatError("group v1 B-tree too deep");
    const head = await io.read(addr, 8 + 2 * O, "group B-tree node");
    const c = io.cursor(head, addr, "group B-tree node");
    c.signature("TREE");
    const type = c.u8();
    if (type !== 0) c.fail(`node type ${type}, expected 0 (group)`);
    const lvl = c.u8();
    const entries = c.u16();
    if (entries === 0) return null;
    const body = await io.read(addr + 8 + 2 * O, (entries + 1) * L + entries * O, "group B-tree node");
    const b = io.cursor(body, addr + 8 + 2 * O, "group B-tree node");
    const keys: number[] = [];
    const children: number[] = [];
    for (let i = 0; i < entries; i++) {
      keys.push(b.length());
      children.push(b.requiredOffset("group B-tree child"));
    }
    keys.push(b.length());
    // child i holds names in (key i, key i+1]
    let pick = -1;
    for (let i = 0; i < entries; i++) {
      if (compareNames(want, heapName(heap, keys[i + 1]!)) <= 0) {
        pick = i;
        break;
      }
    }
    if (pick < 0) return null;
    if (lvl > 0) addr = children[pick]!;
    else snod = children[pick]!;
  }
  const entrySize = 2 * O + 24;
  const head = await io.read(snod, 8, "symbol table node");
  const c = io.cursor(head, snod, "symbol table node");
  c.signature("SNOD");
  c.skip(2); // version, reserved
  const n = c.u16();
  const body = await io.read(snod + 8, n * entrySize, "symbol table node");
  const e = io.cursor(body, snod + 8, "symbol table node");
  for (let i = 0; i < n; i++) {
    const nameOffset = e.uvar(O);
    const objAddr = e.offset();
    const cacheType = e.u32();
    e.skip(4);
    const scratch = e.bytes(16);
    if (compareNames(heapName(heap, nameOffset), want) !== 0) continue;
    if (cacheType === 2) {
      const off = scratch[0]! | (scratch[1]! << 8) | (scratch[2]! << 16) | (scratch[3]! * 0x1000000);
      return { kind: "soft", target: utf8.decode(heapName(heap, off)) };
    }
    if (objAddr === null) throw new Hdf5FormatError(`symbol table entry ${name} has no object address`);
    return { kind: "hard", address: objAddr };
  }
  return null;
}

// ---------------------------------------------------------------------------------------
// one group

async function findLink(io: FileIo, groupAddress: number, name: string): Promise<Link | null> {
  const oh = await readObjectHeader(io, groupAddress);
  for (const m of oh.messages) {
    if (m.type !== MSG_LINK) continue;
    const l = parseLinkMessage(io, m.data, m.position);
    if (l.name === name) return l.link;
  }
  const info = oh.messages.find((m) => m.type === MSG_LINK_INFO);
  if (info) {
    const c = io.cursor(info.data, info.position, "link info message");
    c.u8(); // version
    const flags = c.u8();
    if (flags & 0x01) c.skip(8);
    const heapAddress = c.offset();
    const nameIndex = c.offset();
    if (heapAddress !== null && nameIndex !== null) return findDense(io, heapAddress, nameIndex, name);
  }
  const st = oh.messages.find((m) => m.type === MSG_SYMBOL_TABLE);
  if (st) {
    const c = io.cursor(st.data, st.position, "symbol table message");
    const btree = c.requiredOffset("symbol table B-tree");
    const heap = c.requiredOffset("symbol table local heap");
    return findInSymbolTable(io, btree, heap, name);
  }
  return null;
}

async function findDense(io: FileIo, heapAddress: number, nameIndex: number, name: string): Promise<Link | null> {
  const heap: FractalHeapHeader = await readFractalHeapHeader(io, heapAddress);
  const { type, records } = await readBtreeV2Records(io, nameIndex, "link name index");
  if (type !== 5) throw new Hdf5FormatError(`link name index has record type ${type}, expected 5`);
  const hash = lookup3(encoder.encode(name));
  const hashOf = (r: Uint8Array) => (r[0]! | (r[1]! << 8) | (r[2]! << 16) | (r[3]! * 0x1000000)) >>> 0;
  const tryRecords = async (recs: Uint8Array[]): Promise<Link | null> => {
    for (const r of recs) {
      const obj = await readFractalHeapObject(io, heap, r.subarray(4));
      const l = parseLinkMessage(io, obj, -1);
      if (l.name === name) return l.link;
    }
    return null;
  };
  const byHash = records.filter((r) => hashOf(r) === hash);
  return (await tryRecords(byHash)) ?? (byHash.length === records.length ? null : tryRecords(records.filter((r) => hashOf(r) !== hash)));
}

// ---------------------------------------------------------------------------------------

/** A FileIo with the reader's superblock parameters (the reader keeps its own private). */
export function fileIoFor(reader: Hdf5LayoutReader): FileIo {
  const sb = reader.superblock;
  return new FileIo(reader.source, { offsetSize: sb.offsetSize, lengthSize: sb.lengthSize, baseAddress: sb.baseAddress });
}

/**
 * The object header address of `path` (relative to the base address, as
 * `Hdf5LayoutReader.readDataset` takes it). Throws Hdf5PathError when a
 * component is missing or an external link is met.
 */
export async function resolveHdf5Path(reader: Hdf5LayoutReader, path: string, io: FileIo = fileIoFor(reader)): Promise<number> {
  const sb = reader.superblock;
  const root = sb.rootObjectHeaderAddress + sb.baseAddress;
  let hops = 0;
  const walk = async (p: string): Promise<number> => {
    const comps = p.split("/").filter((c) => c !== "" && c !== ".");
    let cur = root;
    const curPath: string[] = [];
    for (const comp of comps) {
      const link = await findLink(io, cur, comp);
      const here = "/" + [...curPath, comp].join("/");
      if (!link) throw new Hdf5PathError(here, "no such object");
      switch (link.kind) {
        case "hard":
          cur = link.address;
          curPath.push(comp);
          break;
        case "soft": {
          if (++hops > MAX_SOFT_HOPS) throw new Hdf5PathError(here, "too many soft links");
          const target = link.target.startsWith("/") ? link.target : `/${[...curPath, link.target].join("/")}`;
          cur = await walk(target);
          curPath.splice(0, curPath.length, ...target.split("/").filter((c) => c !== "" && c !== "."));
          break;
        }
        case "external":
          throw new Hdf5PathError(here, `is an external link (to ${link.file}:${link.target})`);
      }
    }
    return cur;
  };
  return (await walk(path)) - sb.baseAddress;
}
