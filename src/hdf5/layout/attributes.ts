import { decodeDataspace } from "./messages/dataspace.ts";
import { decodeDatatype } from "./messages/datatype.ts";
import { readObjectHeader } from "./objectHeader.ts";
import { Cursor, type FileIo } from "./reader.ts";
import type { DatatypeInfo } from "./types.ts";

export const MSG_ATTRIBUTE = 0x000c;

/** An attribute as stored: its datatype summary, dataspace and raw (file-order) data. */
export interface RawAttribute {
  name: string;
  datatype: DatatypeInfo;
  shape: number[] | null;
  data: Uint8Array;
}

const pad8 = (n: number) => Math.ceil(n / 8) * 8;

function decodeAttributeMessage(io: FileIo, body: Uint8Array, position: number): RawAttribute {
  const c = new Cursor(body, io.ctx, "attribute message", position);
  const version = c.u8();
  if (version < 1 || version > 3) c.fail(`unsupported version ${version}`);
  const flags = c.u8();
  const nameSize = c.u16();
  const datatypeSize = c.u16();
  const dataspaceSize = c.u16();
  if (version === 3) c.u8(); // name character set
  if (version > 1 && flags & 0x03) c.fail("shared datatype or dataspace in an attribute is not supported here");
  const padded = (n: number) => (version === 1 ? pad8(n) : n);
  const nameBytes = c.bytes(padded(nameSize)).subarray(0, nameSize);
  const nul = nameBytes.indexOf(0);
  const name = new TextDecoder().decode(nul >= 0 ? nameBytes.subarray(0, nul) : nameBytes);
  const datatype = decodeDatatype(c.bytes(padded(datatypeSize)).subarray(0, datatypeSize), io.ctx, position + c.pos);
  const dataspace = decodeDataspace(c.bytes(padded(dataspaceSize)).subarray(0, dataspaceSize), io.ctx, position + c.pos);
  return { name, datatype, shape: dataspace.shape, data: body.subarray(c.pos) };
}

/**
 * The attribute `name` of the object at `address` (absolute) when it is
 * stored compactly in the object header; null when it is not there (dense
 * attribute storage is not read here).
 */
export async function readCompactAttribute(io: FileIo, address: number, name: string): Promise<RawAttribute | null> {
  const oh = await readObjectHeader(io, address);
  for (const m of oh.messages) {
    if (m.type !== MSG_ATTRIBUTE) continue;
    const attr = decodeAttributeMessage(io, m.data, m.position);
    if (attr.name === name) return attr;
  }
  return null;
}
