/**
 * Connections and network (L4) filters.
 *
 * A {@link NetConnection} is one accepted or originated byte stream (TCP or TLS). It runs its own read loop into a
 * reused buffer and hands each chunk synchronously to its handler; writes are copied, coalesced and flushed once
 * per microtask turn. A chunk passed to `onData` is only valid during the call.
 *
 * @module
 */
import type { RouteConfigProviderManager } from "./route.ts";
import type { ClusterManager } from "./upstream.ts";

/** Receives a connection's events. */
export interface ConnectionHandler {
  /** Bytes arrived; valid only during the call. */
  onData(data: Uint8Array): void;
  /** The peer closed its write side (FIN). The connection may still write. */
  onEof(): void;
  /** The connection is closed (locally or by the peer, or after an error). Called once. */
  onClose(reason: string): void;
  /** Queued output dropped below the low watermark after having exceeded the high watermark. */
  onWriteDrained?(): void;
  /** Queued output exceeded the high watermark: stop producing until `onWriteDrained`. */
  onWriteBlocked?(): void;
}

/**
 * The event loop that moves a connection's bytes: `"epoll"`, Ferry's own (`lib/network/epoll.ts`: plain TCP, and the
 * GM engines over it), or `"runtime"`, Deno's reactor (a `Deno.Conn`: native TLS listeners, host names, systems
 * without the epoll engine). A request relayed between connections of both pays a hand-off between the loops on
 * every wait (measured side by side: 30% more CPU for a resumed native TLS handshake with its proxied request, 23%
 * more per MiB of a download), so an upstream connection is opened on the engine of the downstream one it serves
 * (`Cluster.httpPool`, `Cluster.connect`).
 */
export type IoEngine = "epoll" | "runtime";

/** One connection, downstream or upstream. */
export interface NetConnection {
  /** Process-wide unique number, assigned at accept or connect (`%CONNECTION_ID%`, log lines). */
  readonly id: number;
  /** The peer's IP address (IPv6 without brackets). */
  readonly remoteAddress: string;
  /** The peer's TCP port. */
  readonly remotePort: number;
  /** The local IP address of the socket. */
  readonly localAddress: string;
  /** The local TCP port (the listener's port for accepted connections). */
  readonly localPort: number;
  /** True for TLS connections. */
  readonly secure: boolean;
  /** TLS facts, once the handshake is done. */
  readonly tls?: { version?: string; cipher?: string; sni?: string; alpn?: string };
  /** Which event loop moves its bytes; undefined where neither (an in-memory or tunnelled connection). */
  readonly ioEngine?: IoEngine | undefined;
  /** Sets (or replaces) the receiver of this connection's events; its owner calls it before {@link start}. */
  setHandler(handler: ConnectionHandler): void;
  /** Starts the read loop (once the handler is set). */
  start(): void;
  /** Queues bytes; the connection copies them. No-op after close. */
  write(data: Uint8Array): void;
  /** Flushes queued bytes, then closes the write side (half-close). */
  closeWrite(): void;
  /** Closes the connection; with `flush`, after queued bytes are written (bounded by a timeout). */
  close(options?: { flush?: boolean; reason?: string }): void;
  /** Pauses (true) or resumes (false) reading; calls nest like Envoy's readDisable. */
  readDisable(disable: boolean): void;
  /** Bytes queued and not yet written. */
  readonly bufferedAmount: number;
  /**
   * True once the connection is closed (locally, after any flush; by the peer; or on error); `done` has resolved or
   * will.
   */
  readonly closed: boolean;
  /** Bytes received so far (plaintext on a TLS connection), for access logs and `upstream_cx_rx_bytes_total`. */
  readonly bytesRead: number;
  /** Bytes accepted by `write` so far (plaintext on a TLS connection), for access logs and stats. */
  readonly bytesWritten: number;
  /** Resolves when the connection is closed. */
  readonly done: Promise<void>;
}

/**
 * The status a network filter returns. `"continue"`: pass the data (or the new connection) on to the next filter.
 * `"stop"`: hold it here until this filter calls {@link NetworkFilterCallbacks.continueReading} or returns
 * `"continue"` from a later `onData`. The terminal filter consumes everything, so its status is not used.
 */
export type NetworkFilterStatus = "continue" | "stop";

/**
 * A network filter's per-connection instance, driven by the L4 filter manager (`lib/network/filter_manager.ts`,
 * Envoy's `Network::FilterManagerImpl`). Contract:
 * - Filters are initialized in chain order: `onNewConnection` of a filter is called once the filters before it
 *   have continued (so a filter after one that stops is not initialized until that one continues).
 * - Every chunk that reaches a filter is given to its `onData` once, in order, even while the filter is stopped;
 *   a filter stopped (by a `"stop"` from either hook) holds it and everything after it until it continues, and the
 *   manager keeps copies (a chunk is valid only during the call). Then the held chunks reach the next filter in
 *   order, the next filter being initialized first if it was not yet.
 * - A filter that throws closes the connection (the manager logs it, naming the listener and the filter).
 * - `onClose` is called once on every filter of the chain when the connection closes; after it no hook is called
 *   and `continueReading` does nothing.
 */
export interface NetworkFilter {
  /** A connection was accepted (after the TLS handshake, if any). */
  onNewConnection?(): NetworkFilterStatus;
  /** Bytes arrived from downstream (valid only during the call); `endStream` on FIN (then `data` may be empty). */
  onData(data: Uint8Array, endStream: boolean): NetworkFilterStatus;
  /** The downstream connection closed. */
  onClose?(reason: string): void;
  /** The downstream connection's output passed its high watermark (stop producing into it). */
  onWriteBlocked?(): void;
  /** The downstream connection's output drained below its low watermark. */
  onWriteDrained?(): void;
  /** Graceful drain: finish what is in flight, then close (HTTP: `connection: close` on the next response). */
  drain?(): void;
}

/** What the network filter manager offers each filter of a connection (Envoy's `ReadFilterCallbacks`). */
export interface NetworkFilterCallbacks {
  /** The downstream connection (plaintext side after a TLS handshake); read pausing is its `readDisable`. */
  readonly connection: NetConnection;
  /**
   * Resumes the chain after this filter returned `"stop"`: initializes the filters after it that were not yet, and
   * passes on the data it held, in order. Does nothing if the filter is not stopped or the connection is closed.
   */
  continueReading(): void;
}

/**
 * A registry of one kind of extension, as config parsers see it (`lib/config/registry.ts` implements it): look-up
 * by name, by typed-config `@type` URL, or as an Envoy `{name, typed_config}` entry.
 */
export interface ExtensionRegistry<F> {
  /** What the registry holds, for messages ("network filter"). */
  readonly kind: string;
  /** The extension registered under `name` (e.g. `envoy.filters.network.tcp_proxy`), or undefined. */
  byName(name: string): F | undefined;
  /** The extension that accepts typed-config URL `typeUrl` (one of its `configTypes`), or undefined. */
  byType(typeUrl: string): F | undefined;
  /** Resolves by `@type` if given, else by name; throws ConfigError naming `path` if neither is known. */
  resolve(name: string | undefined, typeUrl: string | undefined, path: string): F;
}

/**
 * The registries a network filter's `parseConfig` may consult for nested extensions (an HTTP connection manager's
 * HTTP filters and codec). The full set, with listener filters, is `Registries` in `lib/config/registry.ts`.
 */
export interface ExtensionRegistries {
  /** Network (L4) filters, by name and `@type`. */
  readonly network: ExtensionRegistry<NetworkFilterFactory>;
  /** HTTP filters, for an HTTP connection manager's `http_filters`. */
  readonly http: ExtensionRegistry<import("./stream_filter.ts").HttpFilterFactory>;
  /** Codecs, by name: the connection manager looks up the one its `codec_type` names. */
  readonly codecs: ExtensionRegistry<import("./codec.ts").CodecFactory>;
}

/**
 * Services handed to network filter factories: once per filter chain config to `createFactory`, or per connection
 * to the one-step `create`. One context per listener config: `draining` turns true when that config is replaced or
 * removed (its connections drain) or the server drains.
 */
export interface NetworkFilterContext {
  /** The cluster manager: clusters by name (see lib/upstream). */
  readonly clusterManager: ClusterManager;
  /** Root stats scope. */
  readonly stats: import("./stats.ts").StatsScope;
  /** The listener's name. */
  readonly listenerName: string;
  /** The listener's `traffic_direction`, when set (`OUTBOUND`: connection managers trace egress spans). */
  readonly trafficDirection?: "UNSPECIFIED" | "INBOUND" | "OUTBOUND";
  /** True once connections of this listener config should drain (connection managers stop keep-alive). */
  readonly draining: () => boolean;
  /** The listener's per-connection buffer limit in bytes. */
  readonly bufferLimit: number;
  /**
   * The server's route-config providers, so that a route configuration can be replaced by name while traffic
   * flows (RDS, the runtime API). Absent: each connection manager keeps its inline configuration.
   */
  readonly routeConfigs?: RouteConfigProviderManager;
  /** The overload manager's view (absent: none configured, or the listener has `bypass_overload_manager`). */
  readonly overload?: import("./overload.ts").OverloadView;
}

/**
 * What a network filter factory builds once per filter chain config (Envoy's `Network::FilterFactoryCb`): it
 * creates the filter of each connection. State shared by every connection of one config (stats, route tables,
 * loggers) lives in its closure, never in module-level caches.
 */
export type NetworkFilterFactoryCb = (callbacks: NetworkFilterCallbacks) => NetworkFilter;

/**
 * A network filter factory, listed in `filters/network/mod.ts`, keyed by typed-config `@type`. Three steps, as
 * Envoy's: `parseConfig` validates raw config; `createFactory` builds the per-config state once per filter chain
 * of a listener config (when the listener is added or updated); the returned callback creates the filter of each
 * connection. A factory without `createFactory` has its one-step `create` called per connection.
 */
export interface NetworkFilterFactory<C = unknown> {
  /** Envoy filter name, e.g. "envoy.filters.network.tcp_proxy"; unique in the registry. */
  readonly name: string;
  /** Accepted `@type` URLs of its typed_config; each may be claimed by one factory only. */
  readonly configTypes: readonly string[];
  /** Validates raw config (typed_config without `@type`). `registries` gives nested extension lists. */
  parseConfig(raw: Record<string, unknown>, path: string, registries: ExtensionRegistries): C;
  /** The config-time step: builds what every connection of this config shares; returns the per-connection creator. */
  createFactory?(config: C, context: NetworkFilterContext): NetworkFilterFactoryCb;
  /** Creates the per-connection filter (the one-step form, for factories without `createFactory`). */
  create(config: C, callbacks: NetworkFilterCallbacks, context: NetworkFilterContext): NetworkFilter;
  /**
   * The clusters a parsed config names, each with the field path that names it. The bootstrap calls it once per
   * filter after parsing listeners and clusters, and rejects the config (`ConfigError(path, 'unknown cluster
   * "x"')`) if one is not defined, as Envoy does at load time. Leave out names that may legitimately be missing
   * (chosen per request, like `cluster_header`, or opted out, like `validate_clusters: false`).
   */
  referencedClusters?(config: C): readonly { name: string; path: string }[];
  /** True for filters that must be last (tcp_proxy, http_connection_manager). */
  readonly terminal?: boolean;
}
