import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { decodeBlosc } from "../src/lindi/codecs/blosc.ts";
import {
  JSON2_FILTER_CONFIG,
  decodeJson2,
  encodeJson2,
  isJson2Filter,
  json2FilterConfig,
} from "../src/lindi/codecs/json2.ts";
import { decodeInlineBytes } from "../src/lindi/inlineBytes.ts";
import { PyFloat, pyJsonEqual, stringifyPythonCompact, type PyJson } from "../src/lindi/pythonJson.ts";
import { goldenInlineChunks } from "./support/golden.ts";

const text = (b: Uint8Array) => Buffer.from(b).toString("latin1");

describe("json2", () => {
  test("filter config is exactly the reference's", () => {
    assert.equal(
      stringifyPythonCompact(JSON2_FILTER_CONFIG),
      '{"allow_nan":true,"check_circular":true,"encoding":"utf-8","ensure_ascii":true,"id":"json2","indent":null,"separators":[",",":"],"skipkeys":false,"sort_keys":true,"strict":true}',
    );
    assert.ok(Object.isFrozen(JSON2_FILTER_CONFIG));
    const fresh = json2FilterConfig();
    assert.ok(!Object.isFrozen(fresh));
    assert.ok(pyJsonEqual(fresh, JSON2_FILTER_CONFIG));
    assert.ok(isJson2Filter(fresh));
    assert.ok(!isJson2Filter({ id: "zlib", level: 4 }));
    assert.ok(!isJson2Filter(null));
  });

  test("golden .zarray json2 filters equal JSON2_FILTER_CONFIG", () => {
    let n = 0;
    for (const c of goldenInlineChunks()) {
      const f = c.zarray?.["filters"];
      if (!Array.isArray(f)) continue;
      assert.equal(f.length, 1);
      assert.ok(pyJsonEqual(f[0], JSON2_FILTER_CONFIG), `${c.file} ${c.key}`);
      n++;
    }
    assert.ok(n > 50, `${n}`);
  });

  test("encodes like numcodecs JSON (spec 4.4 examples)", () => {
    assert.equal(text(encodeJson2([[1, new PyFloat(NaN)], [2, new PyFloat(Infinity)]], [2])), "[[1,NaN],[2,Infinity],\"|O\",[2]]");
    assert.equal(text(encodeJson2([["a", "b"], ["c", "d"]], [2, 2])), '[["a","b"],["c","d"],"|O",[2,2]]');
    assert.equal(text(encodeJson2(["abc", "de", "", "ünïcode"], [4])), '["abc","de","","\\u00fcn\\u00efcode","|O",[4]]');
    assert.equal(
      text(encodeJson2([["a", 1.5, null, true, { b: [new PyFloat(1e-7), new PyFloat(NaN)] }]], [1])),
      '[["a",1.5,null,true,{"b":[1e-07,NaN]}],"|O",[1]]',
    );
    assert.equal(text(encodeJson2([{ _REFERENCE: { path: "/x", source: ".", object_id: null, source_object_id: null } }], [1])),
      '[{"_REFERENCE":{"object_id":null,"path":"/x","source":".","source_object_id":null}},"|O",[1]]');
  });

  test("decodes, tolerating NaN/Infinity", () => {
    const d = decodeJson2(new TextEncoder().encode('[[1,NaN],[2,-Infinity],"|O",[2]]'));
    assert.equal(d.dtype, "|O");
    assert.deepEqual(d.shape, [2]);
    assert.ok(pyJsonEqual(d.items, [[1, NaN], [2, -Infinity]]));
    const u = decodeJson2(new TextEncoder().encode('["\\u00fcn\\u00efcode","raw ü","|O",[2]]'));
    assert.deepEqual(u.items, ["ünïcode", "raw ü"]);
    for (const bad of ['{"a":1}', '["|O"]', '[1,2,"|O",[3]]', '[1,"|O","x"]', "[1,2,[1]]", "not json"]) {
      assert.throws(() => decodeJson2(new TextEncoder().encode(bad)), Error, bad);
    }
  });

  test("golden json2 chunks: decode then re-encode gives the identical payload", async () => {
    let n = 0;
    for (const c of goldenInlineChunks()) {
      const f = c.zarray?.["filters"];
      if (!Array.isArray(f) || !isJson2Filter(f[0])) continue;
      const payload = await decodeBlosc(decodeInlineBytes(c.value));
      const d = decodeJson2(payload);
      assert.equal(d.dtype, "|O");
      assert.ok(pyJsonEqual(d.shape as PyJson, c.zarray!["chunks"]), `${c.file} ${c.key}: shape`);
      const again = encodeJson2(d.items, d.shape);
      assert.equal(text(again), text(payload), `${c.file} ${c.key}`);
      n++;
    }
    assert.ok(n > 100, `${n}`);
  });
});
