// @ts-check
/**
 * The engine tar's reader (src/durably_web/web/runtime/engine_site.mjs): the files of a ustar
 * archive, and its extension modules compiled while the tar arrives (streamed into
 * `WebAssembly.compileStreaming` from their first bytes on).
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { readEngineSite, untar } from "../../src/durably_web/web/runtime/engine_site.mjs";

// (module (func (export "f") (result i32) i32.const 7))
const WASM = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 127, 3, 2, 1, 0, 7, 5, 1, 1, 102, 0, 0, 10, 6, 1, 4, 0, 65, 7, 11,
]);

/** A ustar archive of `members` ([path, bytes]), as the build writes it. @param {[string, Uint8Array][]} members */
function tar(members) {
  /** @type {Uint8Array[]} */
  const blocks = [];
  for (const [name, bytes] of members) {
    const header = new Uint8Array(512);
    const put = (/** @type {number} */ at, /** @type {string} */ text) => header.set(new TextEncoder().encode(text), at);
    put(0, name);
    put(100, "0000644\0");
    put(124, `${bytes.length.toString(8).padStart(11, "0")}\0`);
    put(156, "0");
    put(257, "ustar\x0000");
    blocks.push(header, bytes, new Uint8Array((512 - (bytes.length % 512)) % 512));
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  blocks.reduce((at, b) => (out.set(b, at), at + b.length), 0);
  return out;
}

/** A response that hands `bytes` over in chunks of `size`. @param {Uint8Array} bytes @param {number} size */
function chunked(bytes, size) {
  let at = 0;
  const body = new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, (at += size)));
    },
  });
  return new Response(body);
}

const TEXT = new TextEncoder().encode("x = 1\n".repeat(150)); // 900 bytes: two blocks
const MANIFEST = /** @type {any} */ ({ site: "engine-site.tar", dynlibs: ["pkg/_ext.so"] });
const MEMBERS = /** @type {[string, Uint8Array][]} */ ([
  ["a/x.py", TEXT],
  ["pkg/_ext.so", WASM],
  ["z.txt", new TextEncoder().encode("end")],
]);

for (const size of [1, 100, 512, 1 << 20]) {
  test(`the tar's files and its compiled extension, read in chunks of ${size} bytes`, async () => {
    const site = await readEngineSite(chunked(tar(MEMBERS), size), MANIFEST);
    assert.deepEqual(site.files.map(([name, bytes]) => [name, Array.from(bytes)]), MEMBERS.map(([name, bytes]) => [name, Array.from(bytes)]));
    assert.equal(site.dynlibs.length, 1);
    const instance = await WebAssembly.instantiate(site.dynlibs[0]);
    assert.equal(/** @type {any} */ (instance.exports).f(), 7);
    assert.equal(site.files[0][1].buffer.byteLength, tar(MEMBERS).length); // no spare capacity kept
  });
}

test("untar reads what readEngineSite reads", () => {
  assert.deepEqual(untar(tar(MEMBERS)).map(([name]) => name), ["a/x.py", "pkg/_ext.so", "z.txt"]);
});

test("a truncated tar is an error, also in the middle of an extension", async () => {
  const whole = tar(MEMBERS);
  for (const end of [700, 2055]) {
    await assert.rejects(readEngineSite(chunked(whole.slice(0, end), 64), MANIFEST), /truncated/);
  }
});

test("an extension engine.json names but the tar lacks is an error", async () => {
  const manifest = { ...MANIFEST, dynlibs: ["pkg/_other.so"] };
  await assert.rejects(readEngineSite(chunked(tar(MEMBERS), 100), manifest), /engine-site.tar has no pkg\/_other.so/);
});
