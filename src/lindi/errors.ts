/**
 * A file that cannot be expressed as LINDI (or not the way the reference
 * implementation would): names the HDF5 object and the reason.
 */
export class LindiConversionError extends Error {
  constructor(
    readonly objectPath: string,
    readonly reason: string,
  ) {
    super(`${objectPath}: ${reason}`);
    this.name = "LindiConversionError";
  }
}
