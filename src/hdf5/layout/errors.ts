/**
 * Errors thrown by the layout reader. Everything that goes wrong while
 * decoding file structure is one of these, so callers can tell "this file is
 * broken / uses something we don't handle" from programming errors.
 */
export class Hdf5FormatError extends Error {
  override readonly name: string = "Hdf5FormatError";
}

/** The file is valid HDF5 as far as we can tell, but uses a feature we do not decode. */
export class Hdf5UnsupportedError extends Hdf5FormatError {
  override readonly name: string = "Hdf5UnsupportedError";
}

/** The file ends before a structure it references (truncated download, multi-file member, ...). */
export class Hdf5TruncatedError extends Hdf5FormatError {
  override readonly name: string = "Hdf5TruncatedError";
}
