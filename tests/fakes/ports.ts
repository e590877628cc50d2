/**
 * Loopback ports for tests that cannot listen on port 0 themselves.
 *
 * Tests should let servers they own listen on port 0 and read the port back; {@link freePort} is for the other
 * cases: a child process whose config must name its ports, a listener update that moves to a new address, or a
 * "dead" upstream that must refuse connections.
 *
 * @module
 */

/** The first port of the kernel's ephemeral range (what it gives port-0 listeners and outgoing connections). */
const EPHEMERAL_LOW = (() => {
  try {
    const low = Number(Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range").trim().split(/\s+/)[0]);
    return Number.isInteger(low) ? low : undefined;
  } catch {
    return undefined;
  }
})();
/** The lowest port {@link freePort} picks below the ephemeral range. */
const LOW = 10000;

/**
 * Returns a port on 127.0.0.1 that was free a moment ago. Nothing listens on the port afterwards, so connecting to it
 * is refused until someone binds it.
 *
 * It is picked at random below the kernel's ephemeral range (where the kernel's range is known and leaves room), and
 * checked by binding it: the kernel never hands such a port to a port-0 listener or an outgoing connection, so tests
 * running in parallel cannot take it by accident between this call and its use. A port the kernel chose (the
 * fallback) could be: a parallel test's client socket once took one before Ferry bound it (`AddrInUse`, and the
 * test's requests reached another server). Prefer listening on port 0 wherever the code under test allows it.
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
  if (EPHEMERAL_LOW !== undefined && EPHEMERAL_LOW > LOW + 1000) {
    for (let i = 0; i < 32; i++) {
      const p = LOW + Math.floor(Math.random() * (EPHEMERAL_LOW - LOW));
      try {
        Deno.listen({ hostname: "127.0.0.1", port: p }).close();
        return p;
      } catch {
        // Taken (or not ours to bind): try another.
      }
    }
  }
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const p = l.addr.port;
  l.close();
  return p;
}
