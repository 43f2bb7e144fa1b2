import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  PyFloat,
  compareCodePoints,
  parsePythonJson,
  pyFloatRepr,
  pyIntRepr,
  pyJsonEqual,
  pyStringRepr,
  stringifyPython,
  stringifyPythonCompact,
  writePythonJson,
  type PyJson,
} from "../src/lindi/pythonJson.ts";
import { goldenPath, readGoldenList } from "./support/golden.ts";

describe("pythonJson: golden round trip", () => {
  test("stringifyPython(parsePythonJson(text)) === text for every golden file", () => {
    const list = readGoldenList();
    assert.ok(list.length >= 200, `expected the golden list, got ${list.length} entries`);
    const bad: string[] = [];
    for (const rel of list) {
      const text = readFileSync(goldenPath(rel), "utf8");
      const out = stringifyPython(parsePythonJson(text));
      if (out !== text) {
        let i = 0;
        while (i < out.length && out[i] === text[i]) i++;
        bad.push(`${rel}: first difference at char ${i}: ${JSON.stringify(text.slice(i - 30, i + 30))}`);
      }
    }
    assert.deepEqual(bad, []);
  });

  test("streaming writer produces the same text in several chunks", () => {
    const refs: Record<string, PyJson> = {};
    for (let i = 0; i < 20000; i++) refs[`a/${i}`] = ["{{u1}}", i * 1000, 1000];
    const doc = { refs, version: 1 };
    const chunks: string[] = [];
    writePythonJson(doc, (c) => chunks.push(c));
    assert.ok(chunks.length > 1);
    assert.equal(chunks.join(""), stringifyPython(doc));
    assert.deepEqual(parsePythonJson(chunks.join("")), doc);
  });
});

describe("pythonJson: numbers", () => {
  test("float repr matches Python repr()", () => {
    const cases: [number, string][] = [
      [1e16, "1e+16"],
      [1e-5, "1e-05"],
      [0.0001, "0.0001"],
      [123456789012345680.0, "1.2345678901234568e+17"],
      [1.5e300, "1.5e+300"],
      [5e-324, "5e-324"],
      [-0.0, "-0.0"],
      [0.0, "0.0"],
      [0.1, "0.1"],
      [100.0, "100.0"],
      [1.0, "1.0"],
      [1234567890123456.0, "1234567890123456.0"],
      [2 ** 53, "9007199254740992.0"],
      [9999999999999998.0, "9999999999999998.0"],
      [1e22, "1e+22"],
      [-1.5e-7, "-1.5e-07"],
      [0.10000000149011612, "0.10000000149011612"],
      [9.999999999999999e-5, "9.999999999999999e-05"],
      [1.7976931348623157e308, "1.7976931348623157e+308"],
      [2.2250738585072014e-308, "2.2250738585072014e-308"],
      [1.2345678e-6, "1.2345678e-06"],
      [0.30000000000000004, "0.30000000000000004"],
      [NaN, "NaN"],
      [Infinity, "Infinity"],
      [-Infinity, "-Infinity"],
    ];
    for (const [x, want] of cases) assert.equal(pyFloatRepr(x), want, `repr(${x})`);
  });

  test("float repr matches Python on random doubles (bit patterns from Python)", () => {
    // [big-endian IEEE bits, Python repr]
    const rows: [string, string][] = [
      ["f2a74de452e6b438", "-1.989032661366619e+244"],
      ["0c5c7fd0a6a3a450", "3.980498358697587e-249"],
      ["36f675cc81e74ef5", "6.294675241195386e-44"],
      ["3d9c172411e20b8f", "6.387016158513563e-12"],
      ["95e60af593bd04cf", "-3.51527970626667e-203"],
      ["3898d190f9ebdacc", "4.6678633181812096e-36"],
      ["7f15052434b9b5df", "1.441484839555994e+304"],
      ["c6f877186d76b07e", "-7.939416668807721e+33"],
      ["bfedf6459312cb1c", "-0.9363124725844929"],
      ["bf407cb397303dd3", "-0.0005031468302849014"],
      ["3fa4608509fb5880", "0.03979888674591425"],
      ["43d17bcc56032abe", "5.039300762290289e+18"],
      ["c1131b627af71ab9", "-313048.6200832534"],
      ["be9c766725828c6d", "-4.2412447021962694e-07"],
      ["c276c9ed5d8811d2", "-1566032910465.1138"],
      ["43e95601a4f48f1d", "1.4605188055476791e+19"],
      ["c302e6cf4803cf68", "-665040940202477.0"],
      ["c37372e09cdab9e8", "-8.758933739717389e+16"],
      ["c25e274c0745c715", "-518033251607.11066"],
      ["c308ba155ecbb013", "-870000048567810.4"],
    ];
    for (const [hex, want] of rows) {
      const x = Buffer.from(hex, "hex").readDoubleBE(0);
      assert.equal(pyFloatRepr(x), want, hex);
      assert.equal(stringifyPython(new PyFloat(x)), want);
    }
  });

  test("ints: number, large number, bigint", () => {
    assert.equal(pyIntRepr(0), "0");
    assert.equal(pyIntRepr(-0), "0");
    assert.equal(pyIntRepr(-7), "-7");
    assert.equal(pyIntRepr(2 ** 31), "2147483648");
    assert.equal(pyIntRepr(-(2 ** 31)), "-2147483648");
    assert.equal(pyIntRepr(1099511627776), "1099511627776");
    assert.equal(pyIntRepr(-1000000000007), "-1000000000007");
    assert.equal(pyIntRepr(4000000000), "4000000000");
    assert.equal(pyIntRepr(Number.MAX_SAFE_INTEGER), "9007199254740991");
    assert.equal(pyIntRepr(1e20), "100000000000000000000");
    assert.equal(pyIntRepr(1e21), "1000000000000000000000");
    assert.equal(stringifyPython(18446744073709551615n), "18446744073709551615");
    assert.equal(stringifyPython(-9007199254740993n), "-9007199254740993");
    assert.equal(stringifyPython(1), "1");
    assert.equal(stringifyPython(new PyFloat(1)), "1.0");
    assert.equal(stringifyPython(2.5), "2.5");
  });

  test("NaN/Infinity: indented form throws, compact form writes bare literals", () => {
    assert.throws(() => stringifyPython(NaN), /not JSON compliant/);
    assert.throws(() => stringifyPython([new PyFloat(Infinity)]), /not JSON compliant/);
    assert.equal(stringifyPython([new PyFloat(NaN)], { allowNan: true }), "[\n  NaN\n]");
    assert.equal(
      stringifyPythonCompact([NaN, new PyFloat(Infinity), -Infinity, { b: 1, a: [1.5, "x"] }]),
      '[NaN,Infinity,-Infinity,{"a":[1.5,"x"],"b":1}]',
    );
    assert.throws(() => stringifyPythonCompact([NaN], { allowNan: false }), /not JSON compliant/);
  });
});

describe("pythonJson: strings and layout", () => {
  test("ensure_ascii escaping as Python", () => {
    assert.equal(pyStringRepr('ü✓😀\x7f\x00\x1f"\\/'), '"\\u00fc\\u2713\\ud83d\\ude00\\u007f\\u0000\\u001f\\"\\\\/"');
    assert.equal(
      pyStringRepr("\b\f\n\r\t\x01\x1f\x7f\x80\u00ff\u0100\uffff\u{10000}\u{10ffff}"),
      '"\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\\u0080\\u00ff\\u0100\\uffff\\ud800\\udc00\\udbff\\udfff"',
    );
    assert.equal(pyStringRepr("plain ~ text"), '"plain ~ text"');
    assert.equal(pyStringRepr("lone \ud800 surrogate"), '"lone \\ud800 surrogate"');
  });

  test("keys sorted by code point (astral after U+FFFF)", () => {
    const obj = { "\ue000": 1, "\u{1F600}": 2, a: 3, "\uffff": 4 };
    assert.equal(stringifyPythonCompact(obj), '{"a":3,"\\ue000":1,"\\uffff":4,"\\ud83d\\ude00":2}');
    assert.ok(compareCodePoints("\u{1F600}", "\uffff") > 0);
    assert.ok(compareCodePoints("a", "b") < 0);
    assert.equal(compareCodePoints("ab", "ab"), 0);
    assert.ok(compareCodePoints("a", "ab") < 0);
  });

  test("indent=2 layout identical to Python json.dumps", () => {
    const d: PyJson = {
      b: [1, 2.5, [], {}, { z: null, y: true, x: false }],
      a: { k: [new PyFloat(1), new PyFloat(-0), new PyFloat(1e-5), new PyFloat(1e16)] },
      s: "t\u00e9\n",
      big: 18446744073709551615n,
      neg: -9007199254740993n,
    };
    const python =
      '{\n  "a": {\n    "k": [\n      1.0,\n      -0.0,\n      1e-05,\n      1e+16\n    ]\n  },\n  "b": [\n    1,\n    2.5,\n    [],\n    {},\n    {\n      "x": false,\n      "y": true,\n      "z": null\n    }\n  ],\n  "big": 18446744073709551615,\n  "neg": -9007199254740993,\n  "s": "t\\u00e9\\n"\n}';
    assert.equal(stringifyPython(d), python);
    assert.equal(stringifyPython({}), "{}");
    assert.equal(stringifyPython([]), "[]");
    assert.equal(stringifyPython("x"), '"x"');
    assert.equal(stringifyPython(null), "null");
    assert.equal(stringifyPython(parsePythonJson(python)), python);
  });

  test("unsupported values throw", () => {
    assert.throws(() => stringifyPython({ a: undefined } as unknown as PyJson), TypeError);
    assert.throws(() => stringifyPython(new Uint8Array(2) as unknown as PyJson), /Uint8Array is not JSON serializable/);
    assert.throws(() => stringifyPythonCompact([new Map()] as unknown as PyJson), /Map is not JSON serializable/);
    assert.equal(stringifyPythonCompact(Object.assign(Object.create(null), { b: 1, a: 2 })), '{"a":2,"b":1}');
  });
});

describe("pythonJson: parser", () => {
  test("keeps int/float/bigint distinctions and NaN literals", () => {
    const v = parsePythonJson(' [1, 1.0, -0.0, 1e-05, 9007199254740991, 9007199254740993, -18446744073709551615, NaN, Infinity, -Infinity, 2E3] ');
    assert.ok(Array.isArray(v));
    assert.equal(v[0], 1);
    assert.ok(v[1] instanceof PyFloat && v[1].value === 1);
    assert.ok(v[2] instanceof PyFloat && Object.is(v[2].value, -0));
    assert.ok(v[3] instanceof PyFloat && v[3].value === 1e-5);
    assert.equal(v[4], 9007199254740991);
    assert.equal(v[5], 9007199254740993n);
    assert.equal(v[6], -18446744073709551615n);
    assert.ok(v[7] instanceof PyFloat && Number.isNaN(v[7].value));
    assert.ok(v[8] instanceof PyFloat && v[8].value === Infinity);
    assert.ok(v[9] instanceof PyFloat && v[9].value === -Infinity);
    assert.ok(v[10] instanceof PyFloat && v[10].value === 2000);
    assert.equal(
      stringifyPythonCompact(v),
      "[1,1.0,-0.0,1e-05,9007199254740991,9007199254740993,-18446744073709551615,NaN,Infinity,-Infinity,2000.0]",
    );
  });

  test("strings, escapes, objects", () => {
    const v = parsePythonJson('{"a\\u00fc\\ud83d\\ude00": "x\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000", "__proto__": [true, false, null], "e": {}}');
    assert.deepEqual(Object.keys(v as object).sort(), ["__proto__", "a\u00fc\u{1F600}", "e"]);
    const o = v as Record<string, PyJson>;
    assert.equal(o["a\u00fc\u{1F600}"], 'x"\\/\b\f\n\r\t\u0000');
    assert.deepEqual(o["__proto__"], [true, false, null]);
    assert.equal(Object.getPrototypeOf(o), Object.prototype);
    assert.deepEqual(o["e"], {});
  });

  test("rejects invalid JSON", () => {
    for (const bad of [
      "",
      "[1,]",
      "{'a': 1}",
      '{"a" 1}',
      "01",
      "1.",
      '"unterminated',
      '"ctrl\u0001"',
      '"bad \\x escape"',
      '"\\u12g4"',
      "[1] x",
      "nan",
      "tru",
      '{"a":1,}',
    ]) {
      assert.throws(() => parsePythonJson(bad), SyntaxError, JSON.stringify(bad));
    }
  });

  test("pyJsonEqual compares numbers by value", () => {
    assert.ok(pyJsonEqual(new PyFloat(1), 1));
    assert.ok(pyJsonEqual(5n, 5));
    assert.ok(pyJsonEqual({ a: [1, new PyFloat(NaN)], b: "x" }, { b: "x", a: [new PyFloat(1), NaN] }));
    assert.ok(!pyJsonEqual({ a: 1 }, { a: 2 }));
    assert.ok(!pyJsonEqual({ a: 1 }, { a: 1, b: 2 }));
    assert.ok(!pyJsonEqual([1], [1, 2]));
    assert.ok(!pyJsonEqual("1", 1));
    assert.ok(!pyJsonEqual(null, 0));
  });
});
