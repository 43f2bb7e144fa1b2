import type { FloatLayout } from "./layout/index.ts";

const IEEE: Record<number, Omit<FloatLayout, "bitOffset" | "precision">> = {
  2: { signPosition: 15, exponentPosition: 10, exponentSize: 5, mantissaPosition: 0, mantissaSize: 10, exponentBias: 15, normalization: 2 },
  4: { signPosition: 31, exponentPosition: 23, exponentSize: 8, mantissaPosition: 0, mantissaSize: 23, exponentBias: 127, normalization: 2 },
  8: { signPosition: 63, exponentPosition: 52, exponentSize: 11, mantissaPosition: 0, mantissaSize: 52, exponentBias: 1023, normalization: 2 },
};

/** Whether a float layout is plain IEEE 754 for its size (what numpy can hold as is). */
export function isIeeeLayout(layout: FloatLayout, size: number): boolean {
  const std = IEEE[size];
  if (!std) return false;
  return layout.bitOffset === 0 && layout.precision === size * 8 &&
    (Object.keys(std) as (keyof typeof std)[]).every((k) => std[k] === layout[k]);
}

function bits(v: bigint, pos: number, n: number): bigint {
  return (v >> BigInt(pos)) & ((1n << BigInt(n)) - 1n);
}

/** The value of one element of a custom floating-point type (little-endian bytes). */
export function customFloatValue(bytes: Uint8Array, layout: FloatLayout): number {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  const sign = bits(v, layout.signPosition, 1) ? -1 : 1;
  const exp = Number(bits(v, layout.exponentPosition, layout.exponentSize));
  const mant = Number(bits(v, layout.mantissaPosition, layout.mantissaSize));
  const maxExp = 2 ** layout.exponentSize - 1;
  const scale = 2 ** layout.mantissaSize;
  if (exp === maxExp && layout.normalization === 2) return mant === 0 ? sign * Infinity : NaN;
  if (exp === 0 && mant === 0) return sign * 0;
  if (layout.normalization === 2) {
    return exp === 0
      ? sign * (mant / scale) * 2 ** (1 - layout.exponentBias)
      : sign * (1 + mant / scale) * 2 ** (exp - layout.exponentBias);
  }
  // no implied bit (or the msb is stored): the mantissa is the fraction itself
  return sign * (mant / scale) * 2 ** (exp - layout.exponentBias);
}

/**
 * Converts little-endian elements of a custom float type to IEEE floats of
 * the same size (what h5py reads them as), little-endian.
 */
export function customFloatsToIeee(bytes: Uint8Array, size: number, layout: FloatLayout): Uint8Array {
  const n = Math.floor(bytes.length / size);
  const out = new Uint8Array(n * size);
  const view = new DataView(out.buffer);
  for (let i = 0; i < n; i++) {
    const value = customFloatValue(bytes.subarray(i * size, (i + 1) * size), layout);
    if (size === 4) view.setFloat32(i * 4, value, true);
    else if (size === 8) view.setFloat64(i * 8, value, true);
    else throw new Error(`custom floating-point type of ${size} bytes`);
  }
  return out;
}
