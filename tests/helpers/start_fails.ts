/**
 * Config-error tests: something that starts from a config (a Ferry, typically) must refuse that config with an
 * error naming the field.
 */
import { assert } from "../assert.ts";

/**
 * Asserts that `start()` rejects with an Error whose message matches `want`; if it started after all, it is
 * stopped and the assertion fails naming `what` (the config under test).
 */
export async function assertStartFails(
  start: () => Promise<{ stop(): Promise<void> }>,
  want: RegExp,
  what: string,
): Promise<void> {
  let err: unknown;
  try {
    const started = await start();
    await started.stop();
  } catch (e) {
    err = e;
  }
  assert(err instanceof Error && want.test(err.message), `${what}: ${err}`);
}
