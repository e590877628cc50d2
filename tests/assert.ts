/**
 * Assertions for tests, over `node:assert/strict` (JSR's @std/assert is not reachable from here).
 * @module
 */
import nodeAssert from "node:assert/strict";

/** Asserts that `v` is truthy. */
export function assert(v: unknown, msg?: string): asserts v {
  nodeAssert.ok(v, msg);
}

/** Deep, strict equality. */
export function assertEquals<T>(actual: unknown, expected: T, msg?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, msg);
}

/** Deep, strict inequality. */
export function assertNotEquals<T>(actual: unknown, expected: T, msg?: string): void {
  nodeAssert.notDeepStrictEqual(actual, expected, msg);
}

/** `actual` matches `re`. */
export function assertMatch(actual: string, re: RegExp, msg?: string): void {
  nodeAssert.match(actual, re, msg);
}

/** `fn` throws; the message includes `includes` if given. Returns the error. */
export function assertThrows(fn: () => unknown, includes?: string): Error {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof Error)) throw new Error(`threw a non-Error: ${String(e)}`);
    if (includes !== undefined && !e.message.includes(includes)) {
      throw new Error(`expected the error to include ${JSON.stringify(includes)}, got ${JSON.stringify(e.message)}`);
    }
    return e;
  }
  throw new Error("expected a throw");
}

/** `fn` rejects; the message includes `includes` if given. Returns the error. */
export async function assertRejects(fn: () => Promise<unknown>, includes?: string): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof Error)) throw new Error(`rejected with a non-Error: ${String(e)}`);
    if (includes !== undefined && !e.message.includes(includes)) {
      throw new Error(`expected the error to include ${JSON.stringify(includes)}, got ${JSON.stringify(e.message)}`);
    }
    return e;
  }
  throw new Error("expected a rejection");
}
