import { decodeFloat } from "../hdf5/values.ts";
import type { NumpyDtype } from "../hdf5/dtype.ts";
import { encodeFloat } from "./attributes.ts";
import type { PyJson } from "./pythonJson.ts";

/**
 * The Zarr `fill_value` of a byte-range dataset: the HDF5 fill value as h5py
 * reports it (zeros when none is defined), encoded the way zarr writes it.
 * `bytes` are in the dataset's file byte order.
 */
export function zarrFillValue(dtype: NumpyDtype, bytes: Uint8Array | null): PyJson {
  const size = dtype.itemsize;
  const raw = new Uint8Array(size);
  if (bytes && bytes.length >= size) raw.set(bytes.subarray(0, size));
  // normalise to little-endian for decoding
  if (dtype.str.startsWith(">")) raw.reverse();
  const view = new DataView(raw.buffer);
  switch (dtype.kind) {
    case "f":
      return encodeFloat(decodeFloat(view, 0, size));
    case "i":
    case "u": {
      const signed = dtype.kind === "i";
      switch (size) {
        case 1:
          return signed ? view.getInt8(0) : view.getUint8(0);
        case 2:
          return signed ? view.getInt16(0, true) : view.getUint16(0, true);
        case 4:
          return signed ? view.getInt32(0, true) : view.getUint32(0, true);
        case 8: {
          const v = signed ? view.getBigInt64(0, true) : view.getBigUint64(0, true);
          return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
        }
      }
      throw new Error(`integer fill value of ${size} bytes`);
    }
    case "b":
      return raw[0] !== 0;
    default:
      return 0;
  }
}
