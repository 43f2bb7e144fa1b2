/** The blocks (size `bs`) covering [offset, offset+length) of a `size`-byte file; null when that range is empty. */
export function blockSpan(offset: number, length: number, size: number, bs: number): { first: number; last: number; end: number } | null {
  const end = Math.min(offset + length, size);
  if (end <= offset) return null;
  return { first: Math.floor(offset / bs), last: Math.floor((end - 1) / bs), end };
}

/**
 * The bytes of [offset, end) from the fixed-size blocks `first`, `first+1`, …
 * that cover it (block size `bs`): a view of the block when one covers it,
 * else a new array. Shared by the worker's block cache and the main-side
 * block store.
 */
export function joinBlocks(parts: readonly Uint8Array[], first: number, offset: number, end: number, bs: number): Uint8Array {
  if (parts.length === 1) return parts[0]!.subarray(offset - first * bs, end - first * bs);
  const out = new Uint8Array(end - offset);
  let at = 0;
  for (let i = 0; i < parts.length; i++) {
    const b = first + i;
    const from = b === first ? offset - b * bs : 0;
    const to = Math.min(parts[i]!.byteLength, end - b * bs);
    out.set(parts[i]!.subarray(from, to), at);
    at += to - from;
  }
  return out;
}

/**
 * The bytes of [offset, offset+length) of a `size`-byte file when `block`
 * has every block covering it; else null (empty for an empty range). With
 * `copy`, the answer never shares memory with a block (a range inside one
 * block is otherwise a view of it).
 */
export function peekBlocks(
  offset: number,
  length: number,
  size: number,
  bs: number,
  block: (index: number) => Uint8Array | null,
  copy = false,
): Uint8Array | null {
  const span = blockSpan(offset, length, size, bs);
  if (!span) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  for (let b = span.first; b <= span.last; b++) {
    const data = block(b);
    if (!data) return null;
    parts.push(data);
  }
  const bytes = joinBlocks(parts, span.first, offset, span.end, bs);
  return copy && parts.length === 1 ? bytes.slice() : bytes;
}
