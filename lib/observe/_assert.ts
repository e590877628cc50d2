/**
 * The few assertions the `lib/observe/` tests use, over `node:assert/strict` (JSR's std is not reachable here).
 * Private to `lib/observe/` tests.
 *
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

/** Identity (`Object.is`). */
export function assertStrictEquals<T>(actual: unknown, expected: T, msg?: string): void {
  nodeAssert.strictEqual(actual, expected, msg);
}

/** `|actual - expected| <= tolerance`. */
export function assertAlmostEquals(actual: number, expected: number, tolerance: number): void {
  nodeAssert.ok(Math.abs(actual - expected) <= tolerance, `${actual} is not within ${tolerance} of ${expected}`);
}

/** `fn` throws an instance of `cls` whose message includes `includes`; returns the error. */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  cls: abstract new (...args: never[]) => E,
  includes?: string,
): E {
  try {
    fn();
  } catch (e) {
    nodeAssert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    if (includes !== undefined) {
      nodeAssert.ok(
        e.message.includes(includes),
        `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(includes)}`,
      );
    }
    return e;
  }
  throw new nodeAssert.AssertionError({ message: "expected the function to throw" });
}
