import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { decodeInlineBytes, encodeInlineBytes } from "../src/lindi/inlineBytes.ts";
import { stringifyPython } from "../src/lindi/pythonJson.ts";
import { goldenInlineChunks } from "./support/golden.ts";

const bytes = (...b: number[]) => new Uint8Array(b);

describe("inlineBytes", () => {
  test("pure 7-bit content is stored as a string", () => {
    assert.equal(encodeInlineBytes(bytes(0x02, 0x01, 0x33, 0x04, 0x50, 0x00)), "\u0002\u00013\u0004P\u0000");
    assert.equal(stringifyPython(encodeInlineBytes(bytes(0x02, 0x01, 0x33, 0x04, 0x50, 0x00))), '"\\u0002\\u00013\\u0004P\\u0000"');
    assert.equal(encodeInlineBytes(new TextEncoder().encode("hello")), "hello");
    assert.equal(encodeInlineBytes(bytes()), "");
    assert.equal(encodeInlineBytes(bytes(0x7f)), "\x7f");
  });

  test("bytes >= 0x80, or content starting with 'base64:', use base64", () => {
    assert.equal(encodeInlineBytes(bytes(0x80)), "base64:gA==");
    assert.equal(encodeInlineBytes(bytes(0x00, 0xff, 0x10)), "base64:AP8Q");
    assert.equal(encodeInlineBytes(new TextEncoder().encode("base64:abc")), "base64:YmFzZTY0OmFiYw==");
    assert.equal(encodeInlineBytes(new TextEncoder().encode("base64")), "base64");
  });

  test("decode is the inverse; non-base64 strings decode as UTF-8", () => {
    for (const b of [bytes(), bytes(0), bytes(0x80, 1, 2), new TextEncoder().encode("base64:x"), new TextEncoder().encode("abc\n")]) {
      assert.deepEqual(decodeInlineBytes(encodeInlineBytes(b)), b);
    }
    assert.deepEqual(decodeInlineBytes("ü"), bytes(0xc3, 0xbc));
    assert.deepEqual(decodeInlineBytes("base64:"), bytes());
  });

  test("golden inline values re-encode to the same string", () => {
    const chunks = goldenInlineChunks();
    let b64 = 0;
    for (const c of chunks) {
      if (c.value.startsWith("base64:")) b64++;
      assert.equal(encodeInlineBytes(decodeInlineBytes(c.value)), c.value, `${c.file} ${c.key}`);
    }
    assert.ok(b64 > 0 && b64 < chunks.length);
  });
});
