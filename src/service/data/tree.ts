/**
 * The group/dataset structure of a LINDI document, from its flat refs keys:
 * which objects exist (`.zgroup` → group, `.zarray` → dataset), the children of
 * every group (sorted by name, as HDF5 lists them), and the chunk keys of
 * every dataset. Built once per parsed index.
 */
import type { PyJson } from "../../lindi/pythonJson.ts";

const CHUNK_KEY = /^\d+(\.\d+)*$/;

export interface TreeObject {
  kind: "group" | "dataset";
  /** Child names (groups only), sorted. */
  children: string[];
  /** Chunk keys ("0.3") present in refs (datasets only). */
  chunkKeys: string[];
}

function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

export class TreeIndex {
  private readonly objects = new Map<string, TreeObject>();

  constructor(refs: Record<string, PyJson>) {
    const childSets = new Map<string, Set<string>>();
    const chunkLists = new Map<string, string[]>();
    const add = (key: string, kind: "group" | "dataset") => {
      const existing = this.objects.get(key);
      // a key with both .zarray and .zgroup is broken; treat it as a dataset
      if (existing && existing.kind === "dataset") return;
      this.objects.set(key, { kind, children: [], chunkKeys: [] });
      if (key === "") return;
      const slash = key.lastIndexOf("/");
      const parent = slash < 0 ? "" : key.slice(0, slash);
      let set = childSets.get(parent);
      if (!set) childSets.set(parent, (set = new Set()));
      set.add(key.slice(slash + 1));
    };
    for (const k of Object.keys(refs)) {
      const slash = k.lastIndexOf("/");
      const last = k.slice(slash + 1);
      const parent = slash < 0 ? "" : k.slice(0, slash);
      if (last === ".zgroup") add(parent, "group");
      else if (last === ".zarray") add(parent, "dataset");
      else if (CHUNK_KEY.test(last)) {
        let list = chunkLists.get(parent);
        if (!list) chunkLists.set(parent, (list = []));
        list.push(last);
      }
    }
    for (const [parent, names] of childSets) {
      const o = this.objects.get(parent);
      // children under a missing intermediate group: make it a group
      if (!o) this.objects.set(parent, { kind: "group", children: [...names].sort(compareNames), chunkKeys: [] });
      else if (o.kind === "group") o.children = [...names].sort(compareNames);
    }
    for (const [key, list] of chunkLists) {
      const o = this.objects.get(key);
      if (o?.kind === "dataset") o.chunkKeys = list;
    }
  }

  get(key: string): TreeObject | undefined {
    return this.objects.get(key);
  }

  get size(): number {
    return this.objects.size;
  }
}
