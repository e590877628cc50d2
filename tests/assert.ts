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

/** Identity (`Object.is`). */
export function assertStrictEquals<T>(actual: unknown, expected: T, msg?: string): void {
  nodeAssert.strictEqual(actual, expected, msg);
}

/** `|actual - expected| <= tolerance`. */
export function assertAlmostEquals(actual: number, expected: number, tolerance: number): void {
  nodeAssert.ok(Math.abs(actual - expected) <= tolerance, `${actual} is not within ${tolerance} of ${expected}`);
}

/** Asserts `lo <= v <= hi`. */
export function assertBetween(v: number, lo: number, hi: number, msg?: string): void {
  nodeAssert.ok(v >= lo && v <= hi, `${msg ? msg + ": " : ""}${v} is not within [${lo}, ${hi}]`);
}

/** An error class, for {@link assertThrows} and {@link assertRejects}. */
type ErrorClass<E extends Error> = abstract new (...args: never[]) => E;

/** Checks that `e` is a `cls` whose message includes `includes` (if given) and returns it. */
function expectError<E extends Error>(e: unknown, cls: ErrorClass<E>, includes: string | undefined): E {
  if (!(e instanceof cls)) {
    throw new Error(`expected ${cls.name}, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  }
  if (includes !== undefined && !e.message.includes(includes)) {
    throw new Error(`expected the error to include ${JSON.stringify(includes)}, got ${JSON.stringify(e.message)}`);
  }
  return e;
}

/** The class and message fragment from `(includes?)` or `(cls, includes?)`. */
function errorSpec<E extends Error>(
  a: ErrorClass<E> | string | undefined,
  b: string | undefined,
): [ErrorClass<E>, string | undefined] {
  return typeof a === "function" ? [a, b] : [Error as unknown as ErrorClass<E>, a];
}

/** `fn` throws an Error whose message includes `includes` if given. Returns the error. */
export function assertThrows(fn: () => unknown, includes?: string): Error;
/** `fn` throws an instance of `cls` whose message includes `includes` if given. Returns the error. */
export function assertThrows<E extends Error>(fn: () => unknown, cls: ErrorClass<E>, includes?: string): E;
export function assertThrows<E extends Error>(fn: () => unknown, a?: ErrorClass<E> | string, b?: string): E {
  const [cls, includes] = errorSpec(a, b);
  try {
    fn();
  } catch (e) {
    return expectError(e, cls, includes);
  }
  throw new Error(`expected ${cls.name} to be thrown, nothing was`);
}

/** `p` (or what `fn` returns) rejects with an Error whose message includes `includes` if given. Returns it. */
export function assertRejects(p: Promise<unknown> | (() => Promise<unknown>), includes?: string): Promise<Error>;
/** `p` (or what `fn` returns) rejects with an instance of `cls` whose message includes `includes` if given. */
export function assertRejects<E extends Error>(
  p: Promise<unknown> | (() => Promise<unknown>),
  cls: ErrorClass<E>,
  includes?: string,
): Promise<E>;
export async function assertRejects<E extends Error>(
  p: Promise<unknown> | (() => Promise<unknown>),
  a?: ErrorClass<E> | string,
  b?: string,
): Promise<E> {
  const [cls, includes] = errorSpec(a, b);
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    return expectError(e, cls, includes);
  }
  throw new Error(`expected a rejection with ${cls.name}, there was none`);
}
