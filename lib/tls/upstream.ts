/**
 * {@link tlsConnector}: wraps a cluster's TCP connector so every upstream connection (pools, tcp_proxy, health
 * checks) runs the cluster's `transport_socket` handshake first, counting `cluster.<name>.ssl.*`.
 *
 * @module
 */
import type { NetConnection } from "../api/network.ts";
import type { Host } from "../api/upstream.ts";
import type { ConnectOptions, Connector } from "../upstream/connect.ts";
import { TlsHandshakeError } from "./provider.ts";
import type { SslStats } from "./stats.ts";
import { clientContextWithAlpn, type ClientTransportSocket } from "./transport_socket.ts";

/** Options of {@link tlsConnector}. */
export interface TlsConnectorOptions {
  /**
   * ALPN protocols to offer when the transport socket's context names none (`auto_config`: `h2`, `http/1.1`). The
   * protocol the server picked is the connection's `tls.alpn`.
   */
  readonly alpnFallback?: readonly string[] | undefined;
}

/** A connector that opens TCP with `inner`, then TLS with the transport socket's provider. */
export function tlsConnector(
  inner: Connector,
  ts: ClientTransportSocket,
  stats: SslStats,
  options: TlsConnectorOptions = {},
): Connector {
  const fallback = options.alpnFallback ?? [];
  // The context with the fallback offer, rebuilt only when the transport socket's context changes (a rotated
  // secret), so GM client engines stay cached across handshakes.
  let source: ClientTransportSocket["context"] | undefined;
  let offered: ClientTransportSocket["context"] | undefined;
  const contextOf = (): ClientTransportSocket["context"] => {
    const now = ts.context;
    if (fallback.length === 0) return now;
    if (now !== source || offered === undefined) {
      source = now;
      offered = clientContextWithAlpn(ts, fallback);
    }
    return offered;
  };
  return async (host: Host, options: ConnectOptions): Promise<NetConnection> => {
    const started = performance.now();
    const tcp = await inner(host, options);
    const timeoutMs = Math.max(1, options.timeoutMs - (performance.now() - started));
    const opts = { timeoutMs, highWatermark: options.highWatermark, hostname: host.hostname ?? host.address };
    try {
      const context = contextOf();
      const secure = ts.kind === "native"
        ? await ts.provider.connect(tcp, context as typeof ts.context, opts)
        : await ts.provider.connect(tcp, context as typeof ts.context, opts);
      stats.onHandshake(secure);
      return secure;
    } catch (e) {
      stats.onFailure(e instanceof TlsHandshakeError ? e.kind : "handshake");
      tcp.close({ reason: "tls handshake failed" });
      throw e;
    }
  };
}
