/**
 * Assertions shared by the data tests (node:assert/strict underneath: JSR is not
 * reachable from the build machines).
 * @module
 */

import assert from "node:assert/strict";
import type { Problem } from "../../src/data/problems.ts";

/** Returns the one problem whose message contains `text`; fails listing all if not exactly one. */
export function problem(problems: readonly Problem[], text: string): Problem {
  const hits = problems.filter((p) => p.message.includes(text));
  assert.equal(
    hits.length,
    1,
    `expected one problem containing "${text}", got ${hits.length}:\n` +
      problems.map((p) => `  ${p.file}:${p.line ?? "-"}: ${p.message}`).join("\n"),
  );
  return hits[0];
}

/** Asserts that `fn` rejects with an Error whose message contains `text`. */
export async function rejectsWith(fn: () => Promise<unknown>, text: string): Promise<Error> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  return errorContaining(caught, text, "a rejection");
}

/** Asserts that `fn` throws an Error whose message contains `text`. */
export function throwsWith(fn: () => unknown, text: string): Error {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  return errorContaining(caught, text, "an error");
}

/** Asserts that `caught` (undefined: nothing was thrown) is an Error whose message contains `text`. */
function errorContaining(caught: unknown, text: string, expected: string): Error {
  assert.ok(caught instanceof Error, `expected ${expected} containing "${text}", got none`);
  assert.ok(
    caught.message.includes(text),
    `expected message containing "${text}", got "${caught.message}"`,
  );
  return caught;
}
