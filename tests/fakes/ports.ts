/**
 * Loopback ports for tests that cannot listen on port 0 themselves.
 *
 * Tests should let servers they own listen on port 0 and read the port back; {@link freePort} is for the other
 * cases: a child process whose config must name its ports, a listener update that moves to a new address, or a
 * "dead" upstream that must refuse connections.
 *
 * @module
 */

/**
 * Returns a port on 127.0.0.1 that was free a moment ago: it listens on port 0, reads the port the kernel chose
 * and closes the listener. Nothing listens on the port afterwards, so connecting to it is refused until someone
 * binds it.
 *
 * The port is not reserved: another process may take it between this call and its use, so a test that binds it
 * later can (rarely) fail with `AddrInUse`. Prefer listening on port 0 wherever the code under test allows it.
 *
 * @example
 * ```ts
 * import { freePort } from "./ports.ts";
 *
 * const dead = freePort();
 * await Deno.connect({ hostname: "127.0.0.1", port: dead }).catch((e) => e); // ConnectionRefused
 * ```
 */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = l.addr.port;
  l.close();
  return p;
}
