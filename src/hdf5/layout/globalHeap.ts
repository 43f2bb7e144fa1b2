import { Hdf5FormatError } from "./errors.ts";
import { Cursor, type FileIo } from "./reader.ts";

/**
 * Objects of global heap collections ("GCOL"), where HDF5 keeps the bytes of
 * variable-length data. A collection is read once and kept.
 */
export class GlobalHeapReader {
  private readonly collections = new Map<number, Promise<Map<number, Uint8Array>>>();

  constructor(private readonly io: FileIo) {}

  /** The object `index` of the collection at `address` (absolute file position). */
  async object(address: number, index: number): Promise<Uint8Array> {
    let collection = this.collections.get(address);
    if (!collection) {
      collection = this.readCollection(address);
      this.collections.set(address, collection);
      collection.catch(() => this.collections.delete(address));
    }
    const obj = (await collection).get(index);
    if (!obj) throw new Hdf5FormatError(`global heap collection at ${address} has no object ${index}`);
    return obj;
  }

  private async readCollection(address: number): Promise<Map<number, Uint8Array>> {
    const ls = this.io.ctx.lengthSize;
    const head = await this.io.read(address, 8 + ls, "global heap collection header");
    const h = new Cursor(head, this.io.ctx, "global heap collection", address);
    h.signature("GCOL");
    h.skip(4);
    const size = h.length();
    const data = await this.io.readUpTo(address, size, 8 + ls, "global heap collection");
    const c = new Cursor(data, this.io.ctx, "global heap collection", address);
    c.seek(8 + ls);
    const objects = new Map<number, Uint8Array>();
    while (c.remaining >= 8 + ls) {
      const index = c.u16();
      c.skip(6); // reference count, reserved
      const objSize = c.length();
      if (index === 0) break; // free space
      const padded = Math.ceil(objSize / 8) * 8;
      objects.set(index, c.bytes(Math.min(objSize, c.remaining)));
      if (padded > objSize) c.skip(Math.min(padded - objSize, c.remaining));
    }
    return objects;
  }
}

/**
 * Decodes variable-length elements as stored in the file (u32 length, then a
 * global heap ID: collection address + u32 object index); returns each
 * element's bytes (for strings: the characters; for sequences: the items).
 */
export async function readVlenElements(io: FileIo, heap: GlobalHeapReader, raw: Uint8Array, count: number): Promise<Uint8Array[]> {
  const c = new Cursor(raw, io.ctx, "variable-length data");
  const refs: { length: number; address: number | null; index: number }[] = [];
  for (let i = 0; i < count; i++) {
    const length = c.u32();
    const address = c.offset();
    const index = c.u32();
    refs.push({ length, address, index });
  }
  // an empty element has length 0 and (usually) no heap object
  return Promise.all(refs.map((r) => (r.length === 0 || r.address === null ? Promise.resolve(new Uint8Array(0)) : heap.object(r.address, r.index))));
}
