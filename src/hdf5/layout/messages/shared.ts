import { Cursor, type SizeContext } from "../reader.ts";

/** Where a shared message's body really lives. */
export type SharedRef =
  /** In another object header (committed datatype, or old-style shared message). address is absolute. */
  | { kind: "object-header"; address: number }
  /** In the shared object header message (SOHM) fractal heap, by heap id. */
  | { kind: "sohm"; heapId: Uint8Array };

/** Message flag bit 1: the message body is a shared-message reference. */
export const MSG_FLAG_SHARED = 0x02;

/** Shared message reference, versions 1-3. */
export function decodeSharedRef(data: Uint8Array, ctx: SizeContext, position: number, msgType: number): SharedRef {
  const c = new Cursor(data, ctx, `shared message reference (type 0x${msgType.toString(16)})`, position);
  const version = c.u8();
  if (version < 1 || version > 3) c.fail(`unsupported shared message version ${version}`);
  const type = c.u8();
  if (version === 1) {
    c.skip(6);
    // Version 1 embeds an old symbol table entry: a heap offset, then the object header address.
    c.skip(ctx.lengthSize);
    const address = c.requiredOffset("object header address");
    return { kind: "object-header", address };
  }
  if (version === 3 && type === 1) return { kind: "sohm", heapId: c.bytes(8).slice() };
  if (version === 2 || type === 2) {
    const address = c.requiredOffset("object header address");
    return { kind: "object-header", address };
  }
  return c.fail(`unknown shared message type ${type}`);
}
