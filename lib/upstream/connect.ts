/**
 * {@link connectHost}: opens a TCP connection to an upstream host with the cluster's connect timeout and
 * per-connection buffer limit (the write high watermark). The connection is returned unstarted, without a handler.
 *
 * @module
 */
import type { IoEngine, NetConnection } from "../api/network.ts";
import type { Host } from "../api/upstream.ts";
import { ConnectTimeoutError, DenoConnection } from "../network/connection.ts";
import { connectEpoll } from "../network/epoll.ts";
import { runtimeOpStarted } from "../network/_runtime_ops.ts";

/** Options of {@link connectHost}. */
export interface ConnectOptions {
  timeoutMs: number;
  /** Queued-output limit (`per_connection_buffer_limit_bytes`). */
  highWatermark?: number;
  /**
   * The event loop the connection should run on (that of the downstream connection it serves; see {@link IoEngine}):
   * `"runtime"` opens a `Deno.Conn`; otherwise the epoll engine where it can.
   */
  ioEngine?: IoEngine | undefined;
}

/** Opens a connection to a host; injectable in pools and clusters for tests. */
export type Connector = (host: Host, options: ConnectOptions) => Promise<NetConnection>;

/** Connects to `host.address:host.port`; rejects with a Deno error or {@link ConnectTimeoutError}. */
export const connectHost: Connector = async (host, options) => {
  const hw = options.highWatermark !== undefined && options.highWatermark > 0
    ? { highWatermark: options.highWatermark }
    : {};
  // IP literals on Linux: the epoll engine (lib/network/epoll.ts), unless asked for the runtime's; host names and
  // other systems: Deno.connect.
  if (options.ioEngine !== "runtime") {
    const fast = connectEpoll(host.address, host.port, options.timeoutMs, {
      ...hw,
      timeoutMessage: `connect to ${host.key} timed out after ${options.timeoutMs} ms`,
    });
    if (fast) return fast;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const p = Deno.connect({ hostname: host.address, port: host.port, transport: "tcp" });
  runtimeOpStarted();
  try {
    const conn = await Promise.race([
      p,
      new Promise<never>((_, rej) => {
        timer = setTimeout(
          () =>
            rej(
              new ConnectTimeoutError(`connect to ${host.key} timed out after ${options.timeoutMs} ms`),
            ),
          options.timeoutMs,
        );
      }),
    ]);
    conn.setNoDelay(true);
    return new DenoConnection(conn, hw);
  } catch (e) {
    // If the timeout won, close the late connection when it arrives.
    p.then((c) => c.close(), () => {});
    throw e;
  } finally {
    clearTimeout(timer);
  }
};

/** True if an error from a {@link Connector} is a connect timeout. */
export function isConnectTimeout(e: unknown): boolean {
  return e instanceof ConnectTimeoutError || (e instanceof Error && e.name === "ConnectTimeoutError");
}

/** A short description of a connect error for messages. */
export function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
