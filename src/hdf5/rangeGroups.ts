/**
 * Groups byte ranges that lie close together, so that each group is read with
 * one request (the bytes between its members are fetched too): a range joins
 * the previous group when it starts at most `gap` bytes after the group's end
 * and the group stays within `maxBytes`. Shared by every reader that merges
 * reads (HttpByteSource.readMany, CoalescingByteSource, the data endpoints'
 * range reader).
 */

export interface RangeGroup<T> {
  start: number;
  end: number;
  /** In order of start (then end). */
  members: T[];
}

/** `items` in any order; the groups come out in offset order. */
export function groupNearbyRanges<T extends { start: number; end: number }>(items: readonly T[], gap: number, maxBytes: number): RangeGroup<T>[] {
  const sorted = [...items].sort((a, b) => a.start - b.start || a.end - b.end);
  const groups: RangeGroup<T>[] = [];
  for (const it of sorted) {
    const g = groups[groups.length - 1];
    if (g && it.start <= g.end + gap && Math.max(g.end, it.end) - g.start <= maxBytes) {
      g.end = Math.max(g.end, it.end);
      g.members.push(it);
    } else groups.push({ start: it.start, end: it.end, members: [it] });
  }
  return groups;
}
