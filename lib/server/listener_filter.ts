/**
 * Listener filters (Envoy's `listener_filters`): they run on an accepted connection before a filter chain is
 * chosen, may look at its first bytes, and record what they learned for filter-chain matching.
 *
 * Contract: the listener reads into a buffer and calls `onData` with every byte received so far (the same
 * prefix, growing) until the filter returns `"continue"` or `"close"`, the buffer reaches `maxReadBytes`
 * (then `onData` is not called again and the listener continues), or `listener_filters_timeout` expires. Peeked
 * bytes are never consumed: the chosen transport socket or network filters see them first.
 *
 * (Proposal for the lead: move {@link ListenerFilter} and {@link ListenerFilterFactory} to `lib/api/network.ts`.)
 *
 * @module
 */
import type { ClientHelloInfo } from "../tls/client_hello.ts";

/** What listener filters learned about a connection (the inputs of filter-chain matching). */
export interface ListenerFilterState {
  /** `tls` when a ClientHello was seen; undefined means `raw_buffer`. */
  transportProtocol?: string | undefined;
  /** SNI from the ClientHello. */
  serverName?: string | undefined;
  /** ALPN protocols the client offered. */
  applicationProtocols: readonly string[];
  /** The parsed ClientHello, for choosing between TLS providers. */
  clientHello?: ClientHelloInfo | undefined;
}

/** What a listener filter decides after seeing bytes. */
export type ListenerFilterStatus = "continue" | "need-more" | "close";

/** A per-connection listener filter instance. */
export interface ListenerFilter {
  /** How many bytes the filter may need to look at (0: it reads nothing). */
  readonly maxReadBytes: number;
  /** All bytes received so far; records facts in `state`. */
  onData(data: Uint8Array, state: ListenerFilterState): ListenerFilterStatus;
  /** The peer closed (or the buffer filled) before the filter decided. */
  onEnd?(state: ListenerFilterState): void;
}

/** A listener filter factory, listed in `filters/listener/mod.ts`, keyed by typed-config `@type`. */
export interface ListenerFilterFactory<C = unknown> {
  readonly name: string;
  readonly configTypes: readonly string[];
  /** Validates raw config (typed_config without `@type`). */
  parseConfig(raw: Record<string, unknown>, path: string): C;
  create(config: C): ListenerFilter;
}
