import { Cursor, type FileIo } from "../reader.ts";
import type { ExternalFileSegment } from "../types.ts";

/** External Data Files message (0x0007): the dataset's raw data lives in other files. */
export const MSG_EXTERNAL_FILES = 0x0007;

/**
 * The segments of an External Data Files message, in order: each names a
 * file (from the message's local heap), a byte offset in it and a size.
 */
export async function decodeExternalFiles(io: FileIo, data: Uint8Array, position: number): Promise<ExternalFileSegment[]> {
  const c = new Cursor(data, io.ctx, "external data files message", position);
  const version = c.u8();
  if (version !== 1) c.fail(`unsupported version ${version}`);
  c.skip(3);
  c.u16(); // allocated slots
  const used = c.u16();
  const heapAddress = c.requiredOffset("local heap address");
  const slots: { nameOffset: number; offset: number; size: number }[] = [];
  for (let i = 0; i < used; i++) {
    const nameOffset = c.length();
    const offset = c.length();
    // the last segment may be "unlimited" (all 0xFF)
    const size = c.lengthOrUndef() ?? Number.MAX_SAFE_INTEGER;
    slots.push({ nameOffset, offset, size });
  }

  const lengthSize = io.ctx.lengthSize;
  const header = await io.read(heapAddress, 8 + 2 * lengthSize + io.ctx.offsetSize, "local heap header");
  const h = new Cursor(header, io.ctx, "local heap header", heapAddress);
  h.signature("HEAP");
  h.skip(4); // version, reserved
  const segmentSize = h.length();
  h.length(); // free list head
  const segment = h.requiredOffset("local heap data segment");
  const names = await io.read(segment, segmentSize, "local heap data");
  const decoder = new TextDecoder();
  return slots.map((s) => {
    if (s.nameOffset >= names.length) throw new Error(`external file name offset ${s.nameOffset} is outside the local heap`);
    const end = names.indexOf(0, s.nameOffset);
    return { name: decoder.decode(names.subarray(s.nameOffset, end < 0 ? names.length : end)), offset: s.offset, size: s.size };
  });
}
