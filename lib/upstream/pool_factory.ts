/**
 * {@link ConnPoolFactory}: connection-pool implementations by pool mode. A cluster keeps one pool per host and codec
 * and builds it with the factory registered under the codec's `poolMode` (MOSN's pool-per-protocol, Envoy's
 * `ConnPoolMap`). Built in: `ping-pong` (HTTP/1.1, {@link Http1ConnPool}) and `multiplex-stream-id` (HTTP/2,
 * {@link MuxConnPool}); a Bolt/Dubbo (`multiplex-request-id`) pool is one more entry in {@link builtinConnPools}.
 * A cluster with `auto_config` builds {@link MixedConnPool}s instead ({@link createMixedConnPool}), which serve
 * each host by one of the two built-in pools, as TLS ALPN chose.
 *
 * @module
 */
import type { CodecFactory, CodecOptions, PoolMode } from "../api/codec.ts";
import type { ConnPool, Host } from "../api/upstream.ts";
import { Registry } from "../config/registry.ts";
import type { Connector } from "./connect.ts";
import { Http1ConnPool } from "./http1_pool.ts";
import { MixedConnPool } from "./mixed_pool.ts";
import { MuxConnPool } from "./mux_pool.ts";
import type { ClusterResources } from "./resources.ts";
import { multiplexRequestIdPoolFactory } from "./rpc_pool.ts";

/** A pool as its cluster manages it: the {@link ConnPool} the router uses, plus draining and closing. */
export interface UpstreamConnPool extends ConnPool {
  /** True once `drain` or `close` was called: the cluster then builds a fresh pool for new streams. */
  readonly draining: boolean;
  /** Closes everything now: waiting streams fail, active streams are reset (cluster shutdown). */
  close(): void;
}

/** What a pool is built with: the codec, its options, the cluster's circuit breakers and its connector. */
export interface ConnPoolParams {
  readonly codec: CodecFactory;
  readonly codecOptions: CodecOptions;
  readonly resources: ClusterResources;
  readonly connect: Connector;
}

/**
 * Builds the pools of one pool mode. Registered by `name`, which is the {@link PoolMode} it serves (so one mode
 * has exactly one implementation).
 */
export interface ConnPoolFactory {
  readonly name: PoolMode;
  /** Builds the pool of one host and codec. */
  create(host: Host, params: ConnPoolParams): UpstreamConnPool;
}

/** `ping-pong`: {@link Http1ConnPool}, one stream per connection at a time. */
export const pingPongPoolFactory: ConnPoolFactory = {
  name: "ping-pong",
  create(host, params) {
    return new Http1ConnPool(host, {
      codec: params.codec,
      codecOptions: params.codecOptions,
      resources: params.resources,
      connect: params.connect,
    });
  },
};

/** `multiplex-stream-id`: {@link MuxConnPool}, many streams per connection up to the codec's concurrency (HTTP/2). */
export const multiplexStreamIdPoolFactory: ConnPoolFactory = {
  name: "multiplex-stream-id",
  create(host, params) {
    return new MuxConnPool(host, {
      codec: params.codec,
      codecOptions: params.codecOptions,
      resources: params.resources,
      connect: params.connect,
    });
  },
};

/** Every built-in pool implementation. */
export const builtinConnPools: readonly ConnPoolFactory[] = [
  pingPongPoolFactory,
  multiplexStreamIdPoolFactory,
  multiplexRequestIdPoolFactory,
];

/** A registry of the built-in pools plus `extra`; throws if a pool mode is registered twice. */
export function createConnPoolRegistry(extra: readonly ConnPoolFactory[] = []): Registry<ConnPoolFactory> {
  return new Registry("connection pool", [...builtinConnPools, ...extra]);
}

/**
 * The pool of one host of a cluster with `auto_config`: {@link MixedConnPool} over `params.codec` (HTTP/1.1) and
 * `http2Codec`. `params.connect` must offer ALPN (`h2`, `http/1.1`), or every host is served over HTTP/1.1.
 */
export function createMixedConnPool(host: Host, params: ConnPoolParams, http2Codec: CodecFactory): UpstreamConnPool {
  return new MixedConnPool(host, {
    http1Codec: params.codec,
    http2Codec,
    codecOptions: params.codecOptions,
    resources: params.resources,
    connect: params.connect,
  });
}
