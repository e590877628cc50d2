/**
 * The `http2.*` statistics an HTTP/2 codec counts (Envoy's names), over a stats scope: downstream they are rooted
 * at `http2.`, upstream at `cluster.<name>.http2.`, as in Envoy.
 *
 * @module
 */
import type { Http2CounterName, Http2Stats } from "../api/codec.ts";
import type { Counter, StatsScope } from "../api/stats.ts";

const NAMES: readonly Http2CounterName[] = [
  "rx_reset",
  "tx_reset",
  "header_overflow",
  "headers_cb_no_stream",
  "inbound_empty_frames_flood",
  "inbound_priority_frames_flood",
  "inbound_window_update_frames_flood",
  "outbound_flood",
  "outbound_control_flood",
  "rx_messaging_error",
  "stream_refused_errors",
  "trailers",
  "goaway_sent",
  "goaway_received",
  "keepalive_timeout",
  "premature_reset",
  "tx_flush_timeout",
];

/** Creates every `http2.*` counter and the `streams_active` gauge under `scope` (which should end in `http2`). */
export function createHttp2Stats(scope: StatsScope): Http2Stats {
  const counters = new Map<Http2CounterName, Counter>();
  for (const n of NAMES) counters.set(n, scope.counter(n));
  const active = scope.gauge("streams_active");
  return {
    inc(name) {
      counters.get(name)?.inc();
    },
    streamsActive(delta) {
      if (delta >= 0) active.inc(delta);
      else active.dec(-delta);
    },
  };
}

/**
 * Like {@link createHttp2Stats}, but each stat is created when first counted: a cluster holds these whether or not
 * it ever speaks HTTP/2, and 10,000 clusters pushed by CDS spent a quarter of their set-up creating stats (most of
 * them never used; bench/xds.sh). Stats not yet counted do not show in `/stats`.
 */
export function createLazyHttp2Stats(scope: StatsScope): Http2Stats {
  let stats: Http2Stats | undefined;
  return {
    inc(name) {
      (stats ??= createHttp2Stats(scope)).inc(name);
    },
    streamsActive(delta) {
      (stats ??= createHttp2Stats(scope)).streamsActive(delta);
    },
  };
}
