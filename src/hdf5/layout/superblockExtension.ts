import { readObjectHeader, type RawMessage } from "./objectHeader.ts";
import type { FileIo } from "./reader.ts";

export const MSG_SOHM_TABLE = 0x000f;
export const MSG_CACHE_IMAGE = 0x0018;

/** Lazily read, cached messages of the superblock extension object header (v2/v3 superblocks). */
export class SuperblockExtension {
  private cached: Promise<RawMessage[]> | null = null;

  constructor(
    private readonly io: FileIo,
    /** Absolute address of the extension object header, or null when the file has none. */
    readonly address: number | null,
  ) {}

  messages(): Promise<RawMessage[]> {
    this.cached ??= this.address === null ? Promise.resolve([]) : readObjectHeader(this.io, this.address).then((oh) => oh.messages);
    return this.cached;
  }

  /**
   * Whether the file keeps its metadata in a metadata cache image
   * (H5Pset_mdc_image_config): object headers are then not at their addresses.
   */
  async hasCacheImage(): Promise<boolean> {
    try {
      return (await this.messages()).some((m) => m.type === MSG_CACHE_IMAGE);
    } catch {
      return false;
    }
  }
}
