/**
 * The gRPC target of an xDS server named by `envoy_grpc.cluster_name`: connections come from that static cluster —
 * a host its load balancer picks, plain TCP or its transport socket (standard TLS/mTLS, or GM TLS: it is Ferry's own
 * TLS stack) with `h2` offered by ALPN when the context names no protocol — as Envoy's `envoy_grpc` goes through
 * the cluster manager.
 *
 * @module
 */
import { ConfigError } from "../lib/api/errors.ts";
import type { NetConnection } from "../lib/api/network.ts";
import { SslStats } from "../lib/tls/stats.ts";
import { tlsConnector } from "../lib/tls/upstream.ts";
import type { ClusterImpl } from "../lib/upstream/cluster.ts";
import { connectHost } from "../lib/upstream/connect.ts";
import type { GrpcTarget } from "./grpc_source.ts";

/** The target for `cluster`; `authority` defaults to the cluster's name (Envoy's default). */
export function clusterGrpcTarget(
  cluster: ClusterImpl,
  authority: string | undefined,
  path: string,
): Omit<GrpcTarget, "label"> {
  const ts = cluster.config.transportSocket;
  const connector = ts
    ? tlsConnector(connectHost, ts, new SslStats(cluster.info.scope), { alpnFallback: ["h2"] })
    : connectHost;
  const connect = (): Promise<NetConnection> => {
    const host = cluster.chooseHost();
    if (host === undefined) {
      return Promise.reject(
        new ConfigError(`${path}.grpc_services[0].envoy_grpc.cluster_name`, `cluster "${cluster.name}" has no host`),
      );
    }
    return connector(host, {
      timeoutMs: cluster.info.connectTimeoutMs,
      highWatermark: cluster.info.perConnectionBufferLimitBytes,
    });
  };
  return { connect, authority: authority ?? cluster.name, scheme: ts ? "https" : "http", metadata: [] };
}
