/**
 * Connections and network (L4) filters.
 *
 * A {@link NetConnection} is one accepted or originated byte stream (TCP or TLS). It runs its own read loop into a
 * reused buffer and hands each chunk synchronously to its handler; writes are copied, coalesced and flushed once
 * per microtask turn. A chunk passed to `onData` is only valid during the call.
 *
 * @module
 */

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

/** One connection, downstream or upstream. */
export interface NetConnection {
  readonly id: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** True for TLS connections. */
  readonly secure: boolean;
  /** TLS facts, once the handshake is done. */
  readonly tls?: { version?: string; cipher?: string; sni?: string; alpn?: string };
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
  readonly closed: boolean;
  readonly bytesRead: number;
  readonly bytesWritten: number;
  /** Resolves when the connection is closed. */
  readonly done: Promise<void>;
}

/** The status a network filter returns. */
export type NetworkFilterStatus = "continue" | "stop";

/** A network filter's per-connection instance. */
export interface NetworkFilter {
  /** A connection was accepted. */
  onNewConnection?(): NetworkFilterStatus;
  /** Bytes arrived from downstream; `endStream` on FIN. */
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

/** What the network filter manager offers a filter. */
export interface NetworkFilterCallbacks {
  readonly connection: NetConnection;
  /** Resume passing data to later filters after a `"stop"`. */
  continueReading(): void;
}

/** Server-wide services handed to network filter factories when they create filters. */
export interface NetworkFilterContext {
  /** The cluster manager (see lib/upstream). */
  readonly clusterManager: unknown;
  /** Root stats scope. */
  readonly stats: import("./stats.ts").StatsScope;
  /** The listener's name. */
  readonly listenerName: string;
  /** True once the server is draining (connection managers stop keep-alive). */
  readonly draining: () => boolean;
  /** The listener's per-connection buffer limit in bytes. */
  readonly bufferLimit: number;
}

/** A network filter factory, listed in `filters/network/mod.ts`, keyed by typed-config `@type`. */
export interface NetworkFilterFactory<C = unknown> {
  readonly name: string;
  readonly configTypes: readonly string[];
  /** Validates raw config (typed_config without `@type`). `registries` gives nested extension lists. */
  parseConfig(raw: Record<string, unknown>, path: string, registries: unknown): C;
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
