// @ts-check
/**
 * Starting a PyScript page (src/durably_web/web/client/pyscript.mjs): the page package's files
 * come from the list `durably-web build` writes (`_durably/vendor/py/files.json`), never from a
 * copy in the JS, and are put on the interpreter's path under the same names.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { PAGE_FILES, pageFiles, pyscriptConfig } from "../../src/durably_web/web/client/pyscript.mjs";

/** A fetch that answers `PAGE_FILES` with `status` and `body`. @param {number} status @param {unknown} body */
function fakeFetch(status, body) {
  /** @type {string[]} */
  const asked = [];
  /** @type {typeof fetch} */
  const impl = async (url) => {
    asked.push(String(url));
    return new Response(JSON.stringify(body), { status });
  };
  return { impl, asked };
}

test("pageFiles reads the build's list beside the vendored page package", async () => {
  const { impl, asked } = fakeFetch(200, ["durably_web/__init__.py", "durably_web/errors.py"]);
  assert.deepEqual(await pageFiles(impl), ["durably_web/__init__.py", "durably_web/errors.py"]);
  assert.deepEqual(asked, [PAGE_FILES.href]);
  assert.match(PAGE_FILES.href, /\/vendor\/py\/files\.json$/);
});

test("pageFiles: a missing or malformed list is an error naming the file", async () => {
  await assert.rejects(pageFiles(fakeFetch(404, {}).impl), /files\.json: HTTP 404 .*durably-web build/);
  await assert.rejects(pageFiles(fakeFetch(200, { files: [] }).impl), /files\.json: not a JSON list of paths/);
  await assert.rejects(pageFiles(fakeFetch(200, ["a.py", 3]).impl), /not a JSON list of paths/);
});

test("pyscriptConfig maps each listed file to the same path on the interpreter's path", () => {
  const config = pyscriptConfig("mpy", ["durably_web/__init__.py", "durably_web/client/page.py"], {
    files: { "./demo_table.py": "./demo_table.py" },
  });
  const vendor = new URL("../", PAGE_FILES).href; // _durably/vendor/
  assert.equal(config.interpreter, `${vendor}micropython/micropython.mjs`);
  assert.deepEqual(config.files, {
    [`${vendor}py/durably_web/__init__.py`]: "./durably_web/__init__.py",
    [`${vendor}py/durably_web/client/page.py`]: "./durably_web/client/page.py",
    "./demo_table.py": "./demo_table.py",
  });
  assert.equal(pyscriptConfig("py", []).interpreter, `${vendor}pyodide/pyodide.mjs`);
});
