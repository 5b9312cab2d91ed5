// @ts-check
/**
 * What a JSON value may be, checked on the page before a value leaves it: the rules of
 * src/durably_web/json_value.py (their home; the engine checks every value again), so a
 * value JSON text would mangle fails here with a ValidationError instead of arriving changed.
 *
 * - arrays and objects nest at most MAX_DEPTH levels deep;
 * - numbers are finite (`JSON.stringify` writes NaN and Infinity as `null` without a word),
 *   and a BigInt is not JSON (`JSON.stringify` throws a TypeError for it);
 * - strings and keys are well-formed UTF-16: no lone surrogate (the engine refuses it).
 *
 * Like `JSON.stringify`, it calls `toJSON()` (a Date becomes its ISO string) and skips
 * `undefined` and functions in objects.
 */
import { ValidationError } from "./errors.mjs";

/** Most levels of nested arrays and objects (json_value.MAX_DEPTH). */
export const MAX_DEPTH = 32;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** @param {string} text */
const loneSurrogate = (text) => {
  const match = LONE_SURROGATE.exec(text);
  return match ? `strings must be valid Unicode, got a lone surrogate \\u${match[0].charCodeAt(0).toString(16)} at position ${match.index}` : null;
};

/** A dotted path, its middle left out when deep (as json_value.py shows it). @param {(string | number)[]} path */
function showPath(path) {
  const parts = path.map((key) => (String(key).length > 30 ? `${String(key).slice(0, 29)}…` : String(key)));
  if (parts.length <= 8) return parts.join(".");
  return [...parts.slice(0, 4), `…(${parts.length - 8} more)…`, ...parts.slice(-4)].join(".");
}

/** @param {any} value @returns {string | null} what is wrong with a scalar, or null */
function scalarProblem(value) {
  switch (typeof value) {
    case "number":
      return Number.isFinite(value) ? null : `numbers must be finite, got ${value}`;
    case "bigint":
      return `a BigInt is not JSON (got ${value}n)`;
    case "string":
      return loneSurrogate(value);
    default:
      return null;
  }
}

/**
 * Throw a ValidationError naming `what` and the path (`rows.3.price`) if `value` breaks a
 * rule above. The walk is a loop, so any depth is refused without a stack overflow.
 * @param {any} value @param {string} what @param {number} [maxDepth]
 */
export function checkJson(value, what, maxDepth = MAX_DEPTH) {
  /** @type {[any, number, (string | number)[]][]} */
  const todo = [[value, 0, []]];
  while (todo.length) {
    let [item, depth, path] = /** @type {[any, number, (string | number)[]]} */ (todo.pop());
    if (item !== null && typeof item === "object" && typeof item.toJSON === "function") item = item.toJSON();
    const fail = (/** @type {string} */ problem) => new ValidationError(`${path.length ? `${what}: ${showPath(path)}` : what}: ${problem}`);
    if (item === null || typeof item !== "object") {
      const problem = scalarProblem(item);
      if (problem) throw fail(problem);
      continue;
    }
    if (depth >= maxDepth) throw fail(`nested more than ${maxDepth} levels deep`);
    if (Array.isArray(item)) {
      item.forEach((child, index) => todo.push([child, depth + 1, [...path, index]]));
      continue;
    }
    for (const [key, child] of Object.entries(item)) {
      const problem = loneSurrogate(key);
      if (problem) throw fail(`object keys: ${problem}`);
      todo.push([child, depth + 1, [...path, key]]);
    }
  }
}
