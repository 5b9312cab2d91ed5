// @ts-check
// Rewritten by `durably-web build` (src/durably_web/sitebuild/versions.py) with the content
// version of each boot file beside pyodide.mjs, asked for as `<file>?v=<version>` (served
// immutable). Empty here, in the source tree: the plain URLs are used.
/** @type {Record<string, string>} */
export const BOOT_FILES = {};
