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
import type { ClientTransportSocket } from "./transport_socket.ts";

/** A connector that opens TCP with `inner`, then TLS with the transport socket's provider. */
export function tlsConnector(inner: Connector, ts: ClientTransportSocket, stats: SslStats): Connector {
  return async (host: Host, options: ConnectOptions): Promise<NetConnection> => {
    const started = performance.now();
    const tcp = await inner(host, options);
    const timeoutMs = Math.max(1, options.timeoutMs - (performance.now() - started));
    const opts = { timeoutMs, highWatermark: options.highWatermark, hostname: host.hostname ?? host.address };
    try {
      const secure = ts.kind === "native"
        ? await ts.provider.connect(tcp, ts.context, opts)
        : await ts.provider.connect(tcp, ts.context, opts);
      stats.onHandshake(secure);
      return secure;
    } catch (e) {
      stats.onFailure(e instanceof TlsHandshakeError ? e.kind : "handshake");
      tcp.close({ reason: "tls handshake failed" });
      throw e;
    }
  };
}
