/**
 * A hook between code that starts Deno runtime ops (`Deno.Conn` reads and writes, connects, native TLS handshakes)
 * and the epoll engine's loop: such an op makes progress only when Deno's event loop turns, which the loop, waiting
 * on the isolate's own thread for its next event or timer, would otherwise put off (see "Runtime timers" in
 * `epoll.ts`). No import cycle: both sides import this module.
 *
 * @module
 */

let hook: (() => void) | undefined;

/** Installed by the epoll engine of this isolate. */
export function setRuntimeOpHook(fn: () => void): void {
  hook = fn;
}

/** Says that a runtime op was started: the loop lets Deno's event loop turn before it waits again. */
export function runtimeOpStarted(): void {
  hook?.();
}
