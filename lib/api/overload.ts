/**
 * What the data path sees of the overload manager (`lib/server/overload.ts`): a few numbers the manager rewrites on
 * each refresh, read with one check per accepted connection and per request.
 *
 * @module
 */

/** The verdict of {@link OverloadView.admitConnection}. */
export type ConnectionVerdict =
  /** Serve it. */
  | "accept"
  /** `envoy.overload_actions.reject_incoming_connections` (or the `tcp_listener_accept` load shed point). */
  | "reject"
  /** Over the `max_active_downstream_connections` of a downstream connections monitor. */
  | "overflow";

/**
 * The overload state of one event loop (each worker isolate has its own). Contract: a listener that does not
 * bypass the overload manager calls {@link admitConnection} for each accepted connection and
 * {@link releaseConnection} when a connection it admitted with `counted` closes, and pauses its accept loop while
 * {@link watchAccepting} says so; connection managers call {@link shedRequest} for each new request and
 * {@link disableKeepalive} for each response, only while {@link engaged} is true (it is false whenever every
 * action is inactive, so their fast path costs one check).
 */
export interface OverloadView {
  /** True while some action or load shed point has a non-zero scale. */
  readonly engaged: boolean;
  /**
   * Accounts one new downstream connection. `counted`: the connection counts against the global connection limit
   * (false for listeners with `ignore_global_conn_limit`). An "accept" of a counted connection must be paired with
   * {@link releaseConnection}; the other verdicts take nothing.
   */
  admitConnection(counted: boolean): ConnectionVerdict;
  /** A counted connection closed. */
  releaseConnection(): void;
  /** True if this new request must be answered 503 `envoy overloaded` (`stop_accepting_requests`, scaled). */
  shedRequest(): boolean;
  /** True if this response must end its connection (`disable_http_keepalive`, scaled). */
  disableKeepalive(): boolean;
  /**
   * True if a request that has received `bytes` of body so far must be ended (`reset_high_memory_stream`: the
   * higher the scale, the smaller the streams it ends; counted by the manager).
   */
  resetHighMemoryStream(bytes: number): boolean;
  /** A connection or stream idle timeout (ms) scaled by `reduce_timeouts` (`ms` itself when not scaled). */
  scaleTimeout(timer: "HTTP_DOWNSTREAM_CONNECTION_IDLE" | "HTTP_DOWNSTREAM_STREAM_IDLE", ms: number): number;
  /**
   * Calls `onChange(false)` when `stop_accepting_connections` saturates and `onChange(true)` when it ends (and
   * once at once with the current state). Returns the function that stops the calls.
   */
  watchAccepting(onChange: (accepting: boolean) => void): () => void;
}
