/**
 * numcodecs `JSON` codec ("json2") as lindi uses it for object arrays (spec 4.4).
 *
 * Payload = UTF-8 of json.dumps([...chunk.tolist(), dtype.str, list(shape)],
 * separators=(",", ":"), sort_keys=True, ensure_ascii=True, allow_nan=True), i.e. compact,
 * ASCII-escaped, Python float repr, bare NaN/Infinity/-Infinity.
 */
import { parsePythonJson, stringifyPythonCompact, type PyJson, type PyJsonObject } from "../pythonJson.ts";

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object") {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** The exact `filters` entry lindi writes for `|O` arrays (frozen; see json2FilterConfig()). */
export const JSON2_FILTER_CONFIG: PyJsonObject = deepFreeze({
  allow_nan: true,
  check_circular: true,
  encoding: "utf-8",
  ensure_ascii: true,
  id: "json2",
  indent: null,
  separators: [",", ":"],
  skipkeys: false,
  sort_keys: true,
  strict: true,
});

/** A fresh, mutable copy of {@link JSON2_FILTER_CONFIG}. */
export function json2FilterConfig(): PyJsonObject {
  return structuredClone(JSON2_FILTER_CONFIG) as PyJsonObject;
}

/** True if a `.zarray` filter config is the json2 codec. */
export function isJson2Filter(config: PyJson | undefined): boolean {
  return (
    config !== null &&
    typeof config === "object" &&
    !Array.isArray(config) &&
    (config as PyJsonObject)["id"] === "json2"
  );
}

const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Encode one chunk. `items` is the chunk's `tolist()` (for N-D chunks, nested lists:
 * the top level holds the first-axis items); `shape` is the chunk shape.
 */
export function encodeJson2(items: PyJson[], shape: number[], dtype = "|O"): Uint8Array {
  const text = stringifyPythonCompact([...items, dtype, shape], { allowNan: true });
  // ensure_ascii output is pure ASCII: one byte per char
  const b = Buffer.from(text, "latin1");
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export interface Json2Decoded {
  items: PyJson[];
  dtype: string;
  shape: number[];
}

/** Decode one json2 chunk payload (tolerates bare NaN/Infinity/-Infinity). */
export function decodeJson2(bytes: Uint8Array): Json2Decoded {
  const v = parsePythonJson(utf8Decoder.decode(bytes));
  if (!Array.isArray(v) || v.length < 2) throw new Error("json2: payload is not a list ending in dtype and shape");
  const dtype = v[v.length - 2];
  const shapeV = v[v.length - 1];
  if (typeof dtype !== "string") throw new Error("json2: dtype entry is not a string");
  if (!Array.isArray(shapeV) || !shapeV.every((d) => typeof d === "number" && Number.isInteger(d) && d >= 0)) {
    throw new Error("json2: shape entry is not a list of non-negative integers");
  }
  const shape = shapeV as number[];
  const items = v.slice(0, v.length - 2);
  const expected = shape.length === 0 ? 1 : shape[0]!;
  if (items.length !== expected && items.length !== 1 /* numpy would broadcast one item */) {
    throw new Error(`json2: ${items.length} items for shape [${shape.join(", ")}]`);
  }
  return { items, dtype, shape };
}
