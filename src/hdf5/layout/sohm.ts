import { Hdf5FormatError } from "./errors.ts";
import { readFractalHeapHeader, readFractalHeapObject, type FractalHeapHeader } from "./fractalHeap.ts";
import type { FileIo } from "./reader.ts";
import { MSG_SOHM_TABLE, type SuperblockExtension } from "./superblockExtension.ts";

interface SohmIndex {
  messageTypes: number;
  heapAddress: number | null;
}

/**
 * Resolves messages shared through the file's shared object header message
 * (SOHM) table: superblock extension -> "SMTB" -> per-index fractal heap.
 */
export class SohmResolver {
  private table: Promise<SohmIndex[]> | null = null;
  private heaps = new Map<number, Promise<FractalHeapHeader>>();

  constructor(
    private readonly io: FileIo,
    private readonly extension: SuperblockExtension,
  ) {}

  private loadTable(): Promise<SohmIndex[]> {
    this.table ??= (async () => {
      if (this.extension.address === null) {
        throw new Hdf5FormatError("message is shared in the SOHM heap but the file has no superblock extension");
      }
      const msg = (await this.extension.messages()).find((m) => m.type === MSG_SOHM_TABLE);
      if (!msg) throw new Hdf5FormatError("message is shared in the SOHM heap but the file has no shared message table");
      const c = this.io.cursor(msg.data, msg.position, "shared message table message");
      c.u8(); // version
      const tableAddr = c.requiredOffset("table address");
      const nIndexes = c.u8();
      const { offsetSize: O } = this.io.ctx;
      const entrySize = 1 + 1 + 2 + 4 + 2 + 2 + 2 + O + O;
      const buf = await this.io.read(tableAddr, 4 + nIndexes * entrySize + 4, "shared message table");
      const t = this.io.cursor(buf, tableAddr, "shared message table");
      t.signature("SMTB");
      const indexes: SohmIndex[] = [];
      for (let i = 0; i < nIndexes; i++) {
        t.skip(2); // version, index type
        const messageTypes = t.u16();
        t.skip(4 + 2 + 2 + 2); // min size, list cutoff, btree cutoff, count
        t.offset(); // index address
        indexes.push({ messageTypes, heapAddress: t.offset() });
      }
      return indexes;
    })();
    return this.table;
  }

  private heap(address: number): Promise<FractalHeapHeader> {
    let h = this.heaps.get(address);
    if (!h) {
      h = readFractalHeapHeader(this.io, address);
      this.heaps.set(address, h);
    }
    return h;
  }

  /** The raw body of a message of type `msgType` stored in the SOHM heap under `heapId`. */
  async resolve(msgType: number, heapId: Uint8Array): Promise<Uint8Array> {
    const indexes = await this.loadTable();
    // Old fill value messages are indexed under the new fill value type.
    const flagType = msgType === 0x0004 ? 0x0005 : msgType;
    const index = indexes.find((ix) => ix.messageTypes & (1 << flagType));
    if (!index || index.heapAddress === null) {
      throw new Hdf5FormatError(`no SOHM index holds messages of type 0x${msgType.toString(16)}`);
    }
    const heap = await this.heap(index.heapAddress);
    return readFractalHeapObject(this.io, heap, heapId);
  }
}
