import { Hdf5FormatError } from "./errors.ts";
import type { FileIo } from "./reader.ts";

/** One header message, undecoded. */
export interface RawMessage {
  type: number;
  flags: number;
  data: Uint8Array;
  /** Absolute file position of the message data (for error messages). */
  position: number;
}

export interface ObjectHeader {
  version: 1 | 2;
  /** Absolute file position. */
  address: number;
  messages: RawMessage[];
}

export const MSG_NIL = 0x0000;
export const MSG_CONTINUATION = 0x0010;

/** Bytes read speculatively at an object header before its size is known. */
const INITIAL_READ = 512;
/** Bounds that keep a corrupt header from looping or exploding. */
const MAX_CHUNKS = 4096;
const MAX_MESSAGES = 1 << 16;

/** A chunk of header messages to parse: absolute file range of message bytes. */
interface PendingChunk {
  data: Uint8Array;
  position: number;
}

/**
 * Reads an object header (v1 or v2) and all its continuation chunks, returning
 * the raw messages in file order. Continuation chunks found in one chunk are
 * fetched concurrently.
 */
export async function readObjectHeader(io: FileIo, address: number): Promise<ObjectHeader> {
  const what = `object header at ${address}`;
  const first = await io.readUpTo(address, INITIAL_READ, 16, what);
  const isV2 = first[0] === 0x4f && first[1] === 0x48 && first[2] === 0x44 && first[3] === 0x52; // "OHDR"
  const messages: RawMessage[] = [];
  const visited = new Set<number>([address]);
  let chunkCount = 1;

  let firstChunk: PendingChunk;
  let v2Flags = 0;
  if (isV2) {
    const c = io.cursor(first, address, what);
    c.skip(4);
    const version = c.u8();
    if (version !== 2) c.fail(`unsupported object header version ${version}`);
    v2Flags = c.u8();
    if (v2Flags & 0x20) c.skip(16); // access, modification, change, birth times
    if (v2Flags & 0x10) c.skip(4); // max compact / min dense attribute counts
    const sizeBytes = 1 << (v2Flags & 0x03);
    const chunkSize = c.uvar(sizeBytes);
    const start = c.pos;
    // Chunk 0 = prefix + messages + gap + 4-byte checksum.
    const data = await sliceOrRead(io, first, address, start, chunkSize + 4, what);
    firstChunk = { data, position: address + start };
  } else {
    const c = io.cursor(first, address, what);
    const version = c.u8();
    if (version !== 1) c.fail(`not an object header (version byte ${version}, no "OHDR" signature)`);
    c.skip(1 + 2 + 4); // reserved, number of messages, reference count
    const chunkSize = c.u32();
    // The v1 prefix is 12 bytes padded to 16 so messages are 8-byte aligned.
    const data = await sliceOrRead(io, first, address, 16, chunkSize, what);
    firstChunk = { data, position: address + 16 };
  }

  let pending: PendingChunk[] = [firstChunk];
  while (pending.length > 0) {
    const continuations: { address: number; length: number }[] = [];
    for (const chunk of pending) {
      const found = isV2 ? parseV2Messages(io, chunk, v2Flags, messages) : parseV1Messages(io, chunk, messages);
      for (const cont of found) {
        if (visited.has(cont.address)) {
          throw new Hdf5FormatError(`${what}: continuation chunk at ${cont.address} is referenced twice (loop)`);
        }
        visited.add(cont.address);
        continuations.push(cont);
      }
      if (messages.length > MAX_MESSAGES) throw new Hdf5FormatError(`${what}: more than ${MAX_MESSAGES} messages`);
    }
    chunkCount += continuations.length;
    if (chunkCount > MAX_CHUNKS) throw new Hdf5FormatError(`${what}: more than ${MAX_CHUNKS} continuation chunks`);
    pending = await Promise.all(
      continuations.map(async (cont) => {
        const buf = await io.read(cont.address, cont.length, `${what}: continuation chunk`);
        if (isV2) {
          const c = io.cursor(buf, cont.address, `${what}: continuation chunk`);
          c.signature("OCHK");
          return { data: buf.subarray(4), position: cont.address + 4 };
        }
        return { data: buf, position: cont.address };
      }),
    );
  }
  return { version: isV2 ? 2 : 1, address, messages };
}

async function sliceOrRead(
  io: FileIo,
  first: Uint8Array,
  address: number,
  start: number,
  length: number,
  what: string,
): Promise<Uint8Array> {
  if (start + length <= first.length) return first.subarray(start, start + length);
  // Read only the part not already in hand, then join.
  const rest = await io.read(address + first.length, start + length - first.length, what);
  const out = new Uint8Array(length);
  out.set(first.subarray(start));
  out.set(rest, first.length - start);
  return out;
}

function parseV1Messages(
  io: FileIo,
  chunk: PendingChunk,
  out: RawMessage[],
): { address: number; length: number }[] {
  const c = io.cursor(chunk.data, chunk.position, "object header v1 messages");
  const conts: { address: number; length: number }[] = [];
  while (c.remaining >= 8) {
    const type = c.u16();
    const size = c.u16();
    const flags = c.u8();
    c.skip(3);
    if (size > c.remaining) c.fail(`message type 0x${type.toString(16)} of ${size} bytes overruns its chunk`);
    const position = chunk.position + c.pos;
    const data = c.bytes(size);
    if (type === MSG_CONTINUATION) conts.push(decodeContinuation(io, data, position));
    else if (type !== MSG_NIL) out.push({ type, flags, data, position });
  }
  return conts;
}

function parseV2Messages(
  io: FileIo,
  chunk: PendingChunk,
  ohFlags: number,
  out: RawMessage[],
): { address: number; length: number }[] {
  // The last 4 bytes of every v2 chunk are its checksum (not verified here).
  if (chunk.data.length < 4) throw new Hdf5FormatError(`object header v2 chunk at ${chunk.position} is too small`);
  const body = chunk.data.subarray(0, chunk.data.length - 4);
  const c = io.cursor(body, chunk.position, "object header v2 messages");
  const headerSize = ohFlags & 0x04 ? 6 : 4; // creation order field present
  const conts: { address: number; length: number }[] = [];
  // Fewer bytes than a message header left = gap at the end of the chunk.
  while (c.remaining >= headerSize) {
    const type = c.u8();
    const size = c.u16();
    const flags = c.u8();
    if (ohFlags & 0x04) c.skip(2);
    if (size > c.remaining) c.fail(`message type 0x${type.toString(16)} of ${size} bytes overruns its chunk`);
    const position = chunk.position + c.pos;
    const data = c.bytes(size);
    if (type === MSG_CONTINUATION) conts.push(decodeContinuation(io, data, position));
    else if (type !== MSG_NIL) out.push({ type, flags, data, position });
  }
  return conts;
}

function decodeContinuation(io: FileIo, data: Uint8Array, position: number): { address: number; length: number } {
  const c = io.cursor(data, position, "object header continuation message");
  const address = c.requiredOffset("continuation address");
  const length = c.length();
  if (length === 0) c.fail("zero-length continuation chunk");
  return { address, length };
}
