/**
 * Byte-exact Python `json` serialization (spec 2.1) and a parser that keeps what
 * `JSON.parse` loses (int vs float, integers beyond 2^53, bare NaN/Infinity).
 *
 *   stringifyPython(v)         ≡ json.dumps(v, indent=2, sort_keys=True)            (ensure_ascii)
 *   stringifyPythonCompact(v)  ≡ json.dumps(v, separators=(",", ":"), sort_keys=True,
 *                                           ensure_ascii=True, allow_nan=True)
 *   parsePythonJson(text)      ≈ json.loads(text), so that stringify(parse(t)) === t for
 *                                 any text Python's json.dumps wrote.
 *
 * Value model (PyJson): `number` prints as a Python int when `Number.isInteger`, otherwise
 * as a Python float; `PyFloat` always prints as a Python float; `bigint` is an unbounded int.
 */

/** A number that Python holds as `float` (prints `1.0`, not `1`). */
export class PyFloat {
  constructor(readonly value: number) {}
}

export type PyJson = null | boolean | string | number | bigint | PyFloat | PyJson[] | { [key: string]: PyJson };
export type PyJsonObject = { [key: string]: PyJson };

// ---------------------------------------------------------------------------------------
// Numbers

/** Python `repr(float(x))`: shortest round-trip digits, `.0` for integral values,
 *  scientific when the decimal exponent is < -4 or ≥ 16, exponent with sign and ≥ 2 digits. */
export function pyFloatRepr(x: number): string {
  if (x !== x) return "NaN";
  if (x === Infinity) return "Infinity";
  if (x === -Infinity) return "-Infinity";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const a = x < 0 ? -x : x;
  if (a >= 1e-4 && a < 1e16) {
    // JS prints these in fixed notation with the same shortest digits.
    const s = String(x);
    return Number.isInteger(x) ? s + ".0" : s;
  }
  const e = x.toExponential(); // shortest digits, "d.ddde±x"
  const ei = e.indexOf("e");
  const exp = e.slice(ei + 2); // toExponential always writes the sign
  return e.slice(0, ei + 2) + (exp.length < 2 ? "0" + exp : exp);
}

/** Python `repr(int(x))` for an integral JS number (any magnitude). */
export function pyIntRepr(x: number): string {
  if (x < 2147483648 && x > -2147483648) return x === 0 ? "0" : String(x); // small ints: fast path
  if (!Number.isSafeInteger(x)) return BigInt(x).toString();
  // String() of a large double is slow in V8; print it as two small halves
  const neg = x < 0;
  if (neg) x = -x;
  const hi = Math.floor(x / 1e9);
  const lo = String(x - hi * 1e9);
  return (neg ? "-" : "") + String(hi) + "000000000".slice(lo.length) + lo;
}

// ---------------------------------------------------------------------------------------
// Strings

// Characters that json.dumps(ensure_ascii=True) writes as-is: 0x20..0x7E except '"' and '\'.
const NEEDS_ESCAPE = /[^\x20\x21\x23-\x5b\x5d-\x7e]/;
const ESCAPES: string[] = [];
for (let c = 0; c < 0x80; c++) {
  ESCAPES.push(c < 0x20 || c === 0x7f ? "\\u" + c.toString(16).padStart(4, "0") : String.fromCharCode(c));
}
ESCAPES[0x08] = "\\b";
ESCAPES[0x09] = "\\t";
ESCAPES[0x0a] = "\\n";
ESCAPES[0x0c] = "\\f";
ESCAPES[0x0d] = "\\r";
ESCAPES[0x22] = '\\"';
ESCAPES[0x5c] = "\\\\";
const HEX = "0123456789abcdef";

/** Python `json.dumps(s)` with ensure_ascii=True (quotes included). */
export function pyStringRepr(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return '"' + s + '"';
  let out = '"';
  let runStart = 0;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c) continue;
    if (i > runStart) out += s.slice(runStart, i);
    runStart = i + 1;
    if (c < 0x80) {
      out += ESCAPES[c];
    } else {
      // UTF-16 code units: astral characters are already surrogate pairs, as Python writes them
      out += "\\u" + HEX[c >>> 12] + HEX[(c >>> 8) & 15] + HEX[(c >>> 4) & 15] + HEX[c & 15];
    }
  }
  if (runStart < n) out += s.slice(runStart);
  return out + '"';
}

const HAS_SURROGATE = /[\ud800-\udfff]/;

/** Compare by Unicode code point (Python str order), not UTF-16 code unit. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // map surrogates above U+E000..U+FFFF (the classic UTF-16 code-point-order fix-up)
    if (x >= 0xd800) x += x >= 0xe000 ? -0x800 : 0x2000;
    if (y >= 0xd800) y += y >= 0xe000 ? -0x800 : 0x2000;
    return x - y;
  }
  return a.length - b.length;
}

/** Keys of `obj` sorted as Python's `sort_keys=True` does. */
export function sortedKeys(obj: object): string[] {
  const keys = Object.keys(obj).sort();
  for (let i = 0; i < keys.length; i++) {
    if (HAS_SURROGATE.test(keys[i]!)) return keys.sort(compareCodePoints);
  }
  return keys;
}

// ---------------------------------------------------------------------------------------
// Serialization

export interface StringifyOptions {
  /** Write NaN/±Infinity as bare literals (Python allow_nan=True). Default: false for the
   *  indented form (throws), true for the compact form. */
  allowNan?: boolean;
}

const CHUNK_PARTS = 8192;

/** Collects output parts, joining and handing them off every few thousand parts. */
class Writer {
  parts: string[] = [];
  constructor(private readonly sink: (chunk: string) => void) {}
  flushIfLarge(): void {
    if (this.parts.length >= CHUNK_PARTS) {
      this.sink(this.parts.join(""));
      this.parts = [];
    }
  }
  end(): void {
    if (this.parts.length > 0) this.sink(this.parts.join(""));
    this.parts = [];
  }
}

function scalarRepr(v: PyJson, allowNan: boolean): string | undefined {
  switch (typeof v) {
    case "string":
      return pyStringRepr(v);
    case "number":
      if (Number.isInteger(v)) return pyIntRepr(v);
      if (!allowNan && !Number.isFinite(v)) throw nanError(v);
      return pyFloatRepr(v);
    case "bigint":
      return v.toString();
    case "boolean":
      return v ? "true" : "false";
    case "object":
      if (v === null) return "null";
      if (v instanceof PyFloat) {
        if (!allowNan && !Number.isFinite(v.value)) throw nanError(v.value);
        return pyFloatRepr(v.value);
      }
      return undefined; // container
    default:
      throw new TypeError(`Object of type ${typeof v} is not JSON serializable`);
  }
}

function nanError(x: number): Error {
  return new RangeError(`Out of range float values are not JSON compliant: ${x} (NaN/Infinity cannot be written here)`);
}

function plainObject(v: PyJson): PyJsonObject {
  const proto = Object.getPrototypeOf(v as object);
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`Object of type ${(v as { constructor?: { name?: string } }).constructor?.name ?? "unknown"} is not JSON serializable`);
  }
  return v as PyJsonObject;
}

const INDENTS: string[] = [];
function indentStr(level: number): string {
  let s = INDENTS[level];
  if (s === undefined) {
    s = "\n" + "  ".repeat(level);
    INDENTS[level] = s;
  }
  return s;
}

function writeIndented(w: Writer, v: PyJson, level: number, allowNan: boolean): void {
  const s = scalarRepr(v, allowNan);
  if (s !== undefined) {
    w.parts.push(s);
    return;
  }
  const inner = indentStr(level + 1);
  if (Array.isArray(v)) {
    if (v.length === 0) {
      w.parts.push("[]");
      return;
    }
    w.parts.push("[");
    for (let i = 0; i < v.length; i++) {
      w.parts.push(i === 0 ? inner : "," + inner);
      const item = v[i]!;
      const is = scalarRepr(item, allowNan);
      if (is !== undefined) w.parts.push(is);
      else writeIndented(w, item, level + 1, allowNan);
    }
    w.parts.push(indentStr(level) + "]");
  } else {
    const obj = plainObject(v);
    const keys = sortedKeys(obj);
    if (keys.length === 0) {
      w.parts.push("{}");
      return;
    }
    w.parts.push("{");
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const item = obj[k]!;
      const is = scalarRepr(item, allowNan);
      if (is !== undefined) {
        w.parts.push((i === 0 ? inner : "," + inner) + pyStringRepr(k) + ": " + is);
      } else {
        w.parts.push((i === 0 ? inner : "," + inner) + pyStringRepr(k) + ": ");
        writeIndented(w, item, level + 1, allowNan);
      }
      w.flushIfLarge();
    }
    w.parts.push(indentStr(level) + "}");
  }
  w.flushIfLarge();
}

function writeCompact(w: Writer, v: PyJson, allowNan: boolean): void {
  const s = scalarRepr(v, allowNan);
  if (s !== undefined) {
    w.parts.push(s);
    return;
  }
  if (Array.isArray(v)) {
    w.parts.push("[");
    for (let i = 0; i < v.length; i++) {
      if (i > 0) w.parts.push(",");
      const item = v[i]!;
      const is = scalarRepr(item, allowNan);
      if (is !== undefined) w.parts.push(is);
      else writeCompact(w, item, allowNan);
    }
    w.parts.push("]");
  } else {
    const obj = plainObject(v);
    const keys = sortedKeys(obj);
    w.parts.push("{");
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      w.parts.push((i > 0 ? "," : "") + pyStringRepr(k) + ":");
      writeCompact(w, obj[k]!, allowNan);
      w.flushIfLarge();
    }
    w.parts.push("}");
  }
  w.flushIfLarge();
}

/** Stream `json.dumps(v, indent=2, sort_keys=True)` to `sink` in chunks. */
export function writePythonJson(v: PyJson, sink: (chunk: string) => void, opts: StringifyOptions = {}): void {
  const w = new Writer(sink);
  writeIndented(w, v, 0, opts.allowNan ?? false);
  w.end();
}

/** Stream the compact form (see {@link stringifyPythonCompact}) to `sink`. */
export function writePythonJsonCompact(v: PyJson, sink: (chunk: string) => void, opts: StringifyOptions = {}): void {
  const w = new Writer(sink);
  writeCompact(w, v, opts.allowNan ?? true);
  w.end();
}

/** Python `json.dumps(v, indent=2, sort_keys=True)` (ensure_ascii; no trailing newline).
 *  Throws on NaN/Infinity unless `allowNan`. */
export function stringifyPython(v: PyJson, opts: StringifyOptions = {}): string {
  const chunks: string[] = [];
  writePythonJson(v, (c) => chunks.push(c), opts);
  return chunks.length === 1 ? chunks[0]! : chunks.join("");
}

/** Python `json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=True,
 *  allow_nan=True)`: NaN, Infinity, -Infinity written bare. */
export function stringifyPythonCompact(v: PyJson, opts: StringifyOptions = {}): string {
  const chunks: string[] = [];
  writePythonJsonCompact(v, (c) => chunks.push(c), opts);
  return chunks.length === 1 ? chunks[0]! : chunks.join("");
}

// ---------------------------------------------------------------------------------------
// Parsing

export class PythonJsonSyntaxError extends SyntaxError {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(`${message} at position ${position}`);
    this.name = "PythonJsonSyntaxError";
  }
}

const CONTROL_CHAR = /[\x00-\x1f]/;
const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Parse JSON as Python's `json.loads` does: integers stay integers (bigint beyond 2^53-1),
 * numbers with a fraction or exponent become PyFloat, bare NaN/Infinity/-Infinity are
 * accepted (as PyFloat). Whitespace may surround the document (e.g. tar padding).
 */
export function parsePythonJson(text: string): PyJson {
  const n = text.length;
  let pos = 0;
  let nextBackslash = -1; // position of the next '\\' at or after the current string (n if none)

  const fail = (msg: string, at = pos): never => {
    throw new PythonJsonSyntaxError(msg, at);
  };

  const skipWs = (): void => {
    while (pos < n) {
      const c = text.charCodeAt(pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++;
      else break;
    }
  };

  const parseString = (): string => {
    // text[pos] === '"'
    // fast path: no backslash before the closing quote (native indexOf scans)
    const start = ++pos;
    const q = text.indexOf('"', start);
    if (q < 0) fail("Unterminated string", start - 1);
    if (nextBackslash < start) {
      nextBackslash = text.indexOf("\\", start);
      if (nextBackslash < 0) nextBackslash = n;
    }
    if (nextBackslash > q) {
      const str = text.slice(start, q);
      if (CONTROL_CHAR.test(str)) fail("Invalid control character in string", start);
      pos = q + 1;
      return str;
    }
    // slow path: escapes
    let i = nextBackslash;
    const head = text.slice(start, i);
    if (CONTROL_CHAR.test(head)) fail("Invalid control character in string", start);
    const parts: string[] = [head];
    let runStart = i;
    for (;;) {
      if (i >= n) fail("Unterminated string", start - 1);
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        if (i > runStart) parts.push(text.slice(runStart, i));
        pos = i + 1;
        return parts.join("");
      }
      if (c < 0x20) fail("Invalid control character in string", i);
      if (c !== 0x5c) {
        i++;
        continue;
      }
      if (i > runStart) parts.push(text.slice(runStart, i));
      const e = text.charCodeAt(i + 1);
      switch (e) {
        case 0x22: parts.push('"'); i += 2; break;
        case 0x5c: parts.push("\\"); i += 2; break;
        case 0x2f: parts.push("/"); i += 2; break;
        case 0x62: parts.push("\b"); i += 2; break;
        case 0x66: parts.push("\f"); i += 2; break;
        case 0x6e: parts.push("\n"); i += 2; break;
        case 0x72: parts.push("\r"); i += 2; break;
        case 0x74: parts.push("\t"); i += 2; break;
        case 0x75: {
          let code = 0;
          for (let k = i + 2; k < i + 6; k++) {
            const h = k < n ? text.charCodeAt(k) : -1;
            let d: number;
            if (h >= 0x30 && h <= 0x39) d = h - 0x30;
            else if (h >= 0x61 && h <= 0x66) d = h - 0x57;
            else if (h >= 0x41 && h <= 0x46) d = h - 0x37;
            else return fail("Invalid \\uXXXX escape", i);
            code = (code << 4) | d;
          }
          parts.push(String.fromCharCode(code));
          i += 6;
          break;
        }
        default:
          fail("Invalid \\escape", i);
      }
      runStart = i;
    }
  };

  const parseNumber = (): PyJson => {
    const start = pos;
    let i = pos;
    if (text.charCodeAt(i) === 0x2d) {
      i++;
      if (text.startsWith("Infinity", i)) {
        pos = i + 8;
        return new PyFloat(-Infinity);
      }
    }
    const intStart = i;
    let c = text.charCodeAt(i);
    if (c === 0x30) {
      i++;
    } else if (c >= 0x31 && c <= 0x39) {
      i++;
      while (i < n && (c = text.charCodeAt(i)) >= 0x30 && c <= 0x39) i++;
    } else {
      fail("Expecting value", start);
    }
    let isFloat = false;
    if (i < n && text.charCodeAt(i) === 0x2e) {
      const d = i + 1;
      i = d;
      while (i < n && (c = text.charCodeAt(i)) >= 0x30 && c <= 0x39) i++;
      if (i === d) {
        // Python: "1." parses as int 1 followed by junk
        fail("Expecting digits after decimal point", i);
      }
      isFloat = true;
    }
    if (i < n && ((c = text.charCodeAt(i)) === 0x65 || c === 0x45)) {
      let j = i + 1;
      const s = text.charCodeAt(j);
      if (s === 0x2b || s === 0x2d) j++;
      const d = j;
      while (j < n && (c = text.charCodeAt(j)) >= 0x30 && c <= 0x39) j++;
      if (j > d) {
        i = j;
        isFloat = true;
      }
    }
    pos = i;
    const s = text.slice(start, i);
    if (isFloat) return new PyFloat(Number(s));
    if (i - intStart <= 15) return Number(s);
    const b = BigInt(s);
    return b <= MAX_SAFE_BIG && b >= -MAX_SAFE_BIG ? Number(b) : b;
  };

  const parseValue = (): PyJson => {
    skipWs();
    if (pos >= n) fail("Expecting value");
    const c = text.charCodeAt(pos);
    switch (c) {
      case 0x22:
        return parseString();
      case 0x7b: {
        // object
        pos++;
        const obj: PyJsonObject = {};
        skipWs();
        if (text.charCodeAt(pos) === 0x7d) {
          pos++;
          return obj;
        }
        for (;;) {
          skipWs();
          if (text.charCodeAt(pos) !== 0x22) fail("Expecting property name enclosed in double quotes");
          const key = parseString();
          skipWs();
          if (text.charCodeAt(pos) !== 0x3a) fail("Expecting ':' delimiter");
          pos++;
          const val = parseValue();
          if (key === "__proto__") {
            Object.defineProperty(obj, key, { value: val, enumerable: true, writable: true, configurable: true });
          } else {
            obj[key] = val;
          }
          skipWs();
          const d = text.charCodeAt(pos);
          if (d === 0x2c) {
            pos++;
          } else if (d === 0x7d) {
            pos++;
            return obj;
          } else {
            fail("Expecting ',' delimiter");
          }
        }
      }
      case 0x5b: {
        pos++;
        const arr: PyJson[] = [];
        skipWs();
        if (text.charCodeAt(pos) === 0x5d) {
          pos++;
          return arr;
        }
        for (;;) {
          arr.push(parseValue());
          skipWs();
          const d = text.charCodeAt(pos);
          if (d === 0x2c) {
            pos++;
          } else if (d === 0x5d) {
            pos++;
            return arr;
          } else {
            fail("Expecting ',' delimiter");
          }
        }
      }
      case 0x74:
        if (text.startsWith("true", pos)) {
          pos += 4;
          return true;
        }
        break;
      case 0x66:
        if (text.startsWith("false", pos)) {
          pos += 5;
          return false;
        }
        break;
      case 0x6e:
        if (text.startsWith("null", pos)) {
          pos += 4;
          return null;
        }
        break;
      case 0x4e:
        if (text.startsWith("NaN", pos)) {
          pos += 3;
          return new PyFloat(NaN);
        }
        break;
      case 0x49:
        if (text.startsWith("Infinity", pos)) {
          pos += 8;
          return new PyFloat(Infinity);
        }
        break;
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return parseNumber();
    }
    return fail("Expecting value");
  };

  const v = parseValue();
  skipWs();
  if (pos !== n) fail("Extra data");
  return v;
}

// ---------------------------------------------------------------------------------------
// Helpers

/** Numeric value of a PyJson number (number, bigint or PyFloat), else undefined. */
export function pyNumber(v: PyJson | undefined): number | bigint | undefined {
  if (typeof v === "number" || typeof v === "bigint") return v;
  if (v instanceof PyFloat) return v.value;
  return undefined;
}

function numEqual(a: number | bigint, b: number | bigint): boolean {
  if (typeof a === "number" && typeof b === "number") return a === b || (a !== a && b !== b);
  // eslint-disable-next-line eqeqeq
  return a == b; // number/bigint mixed comparison is exact
}

/** Equality of JSON values "by value": numbers compare numerically regardless of
 *  int/float/bigint representation (NaN equals NaN), objects regardless of key order. */
export function pyJsonEqual(a: PyJson | undefined, b: PyJson | undefined): boolean {
  if (a === b) return true;
  const na = pyNumber(a);
  const nb = pyNumber(b);
  if (na !== undefined || nb !== undefined) {
    return na !== undefined && nb !== undefined && numEqual(na, nb);
  }
  if (a === null || b === null || a === undefined || b === undefined) return false;
  if (typeof a !== "object" || typeof b !== "object") return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!pyJsonEqual(a[i], b[i])) return false;
    return true;
  }
  const ao = a as PyJsonObject;
  const bo = b as PyJsonObject;
  const ak = Object.keys(ao);
  if (ak.length !== Object.keys(bo).length) return false;
  for (const k of ak) {
    if (!Object.prototype.hasOwnProperty.call(bo, k)) return false;
    if (!pyJsonEqual(ao[k], bo[k])) return false;
  }
  return true;
}
