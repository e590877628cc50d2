/**
 * The few assertions the `lib/upstream/` and tcp_proxy tests use, over `node:assert/strict` (JSR's std is not
 * reachable here).
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

/** Asserts `lo <= v <= hi`. */
export function assertBetween(v: number, lo: number, hi: number, msg?: string): void {
  nodeAssert.ok(v >= lo && v <= hi, `${msg ? msg + ": " : ""}${v} is not within [${lo}, ${hi}]`);
}

/** Asserts that `fn` throws an instance of `cls`; returns the error. */
export function assertThrows<E extends Error>(fn: () => unknown, cls: new (...args: never[]) => E): E {
  try {
    fn();
  } catch (e) {
    if (e instanceof cls) return e;
    throw new Error(`expected ${cls.name}, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  }
  throw new Error(`expected ${cls.name}, nothing was thrown`);
}

/** Asserts that a promise rejects with an instance of `cls`; returns the error. */
export async function assertRejects<E extends Error>(
  p: Promise<unknown>,
  cls: new (...args: never[]) => E,
): Promise<E> {
  try {
    await p;
  } catch (e) {
    if (e instanceof cls) return e;
    throw new Error(`expected ${cls.name}, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  }
  throw new Error(`expected ${cls.name}, nothing was thrown`);
}
