/**
 * What is known about one stream (or one TCP connection), for access logs and stats.
 *
 * @module
 */
import type { HeaderMap } from "./headers.ts";

/** Envoy's response flags (the `%RESPONSE_FLAGS%` short names). */
export type ResponseFlag =
  | "UH" // no healthy upstream
  | "UF" // upstream connection failure
  | "UO" // upstream overflow (circuit breaker)
  | "NR" // no route
  | "URX" // upstream retry limit exceeded
  | "NC" // no cluster
  | "DT" // request duration timeout
  | "UT" // upstream request timeout
  | "LR" // local reset
  | "UR" // upstream remote reset
  | "UC" // upstream connection termination
  | "DI" // delay injected
  | "FI" // fault injected
  | "DC" // downstream connection termination
  | "DPE" // downstream protocol error
  | "UPE" // upstream protocol error
  | "SI" // stream idle timeout
  | "RL" // rate limited
  | "UAEX" // unauthorized external service
  | "IH" // invalid headers
  | "DF" // DNS resolution failure
  | "OM"; // overload manager

/** Mutable facts about one stream, filled in as it progresses. */
export interface StreamInfo {
  /** Wall clock at start (ms since epoch). */
  startTime: number;
  /** `performance.now()` at start. */
  startMono: number;
  /** Milliseconds from start to end; set when the stream completes. */
  durationMs?: number | undefined;
  /** Milliseconds from start to the last request byte received. */
  requestCompleteMs?: number | undefined;
  /** Milliseconds from start to the first upstream response byte. */
  firstUpstreamRxMs?: number | undefined;
  /** "HTTP/1.1", "HTTP/1.0", "HTTP/2"; undefined for TCP. */
  protocol?: string | undefined;
  /**
   * Status of the response sent downstream, set by the connection manager when it encodes the headers
   * (`%RESPONSE_CODE%`).
   */
  responseCode?: number | undefined;
  /**
   * Why the response has its status, e.g. `route_not_found`, `direct_response`, `codec_error:BadHeader`
   * (`%RESPONSE_CODE_DETAILS%`).
   */
  responseCodeDetails?: string | undefined;
  /** Response flags in the order recorded, by filters, the router and the connection manager (`%RESPONSE_FLAGS%`). */
  responseFlags: ResponseFlag[];
  /**
   * Body bytes received from downstream (HTTP) or bytes read from it (TCP), headers not counted (`%BYTES_RECEIVED%`).
   */
  bytesReceived: number;
  /** Body bytes sent downstream (HTTP) or bytes written to it (TCP), headers not counted (`%BYTES_SENT%`). */
  bytesSent: number;
  /** `address:port` of the last host the router or tcp_proxy chose (`%UPSTREAM_HOST%`). */
  upstreamHost?: string | undefined;
  /** Name of the cluster the router or tcp_proxy chose (`%UPSTREAM_CLUSTER%`). */
  upstreamCluster?: string | undefined;
  /** `address:port` of the local end of the upstream connection used (`%UPSTREAM_LOCAL_ADDRESS%`). */
  upstreamLocalAddress?: string | undefined;
  /** The one-line reason the last upstream connection attempt failed (`%UPSTREAM_TRANSPORT_FAILURE_REASON%`). */
  upstreamTransportFailureReason?: string | undefined;
  /** The matched route's `name`, when it has one, set by the router (`%ROUTE_NAME%`). */
  routeName?: string | undefined;
  /** The matched virtual host's `name`, set by the router (`%VIRTUAL_HOST_NAME%`). */
  virtualHostName?: string | undefined;
  /** The request's `x-request-id` after the connection manager generated or kept it. */
  requestId?: string | undefined;
  /**
   * The client's address: the peer's, or the one the connection manager trusted from `x-forwarded-for`
   * (`%DOWNSTREAM_REMOTE_ADDRESS%`).
   */
  downstreamRemoteAddress: string;
  /** The peer's address on the connection, whatever `x-forwarded-for` says (`%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%`). */
  downstreamDirectRemoteAddress: string;
  /** The local (listener) end of the downstream connection (`%DOWNSTREAM_LOCAL_ADDRESS%`). */
  downstreamLocalAddress: string;
  /** The request headers as the filters see them (`%REQ(...)%`); HTTP only. */
  requestHeaders?: HeaderMap | undefined;
  /** The response headers sent downstream (`%RESP(...)%`); HTTP only. */
  responseHeaders?: HeaderMap | undefined;
  /** The response trailers sent downstream, if any (`%TRAILER(...)%`); HTTP only. */
  responseTrailers?: HeaderMap | undefined;
  /** The downstream connection's `NetConnection.id` (`%CONNECTION_ID%`). */
  connectionId?: number | undefined;
  /** Why tcp_proxy closed the connection, e.g. `idle_timeout` (`%CONNECTION_TERMINATION_DETAILS%`). */
  connectionTerminationDetails?: string | undefined;
  /** TLS facts, when the downstream connection is TLS. */
  tls?: { version?: string; cipher?: string; sni?: string; peerSubject?: string } | undefined;
  /** Upstream retry attempts made. */
  attemptCount?: number | undefined;
}

/**
 * A StreamInfo with every field present from the start, so all streams share one hidden class (fields assigned
 * later do not reshape the object, which measured as a visible cost on the per-request path).
 */
class StreamInfoImpl implements StreamInfo {
  startTime = Date.now();
  startMono: number;
  durationMs: number | undefined = undefined;
  requestCompleteMs: number | undefined = undefined;
  firstUpstreamRxMs: number | undefined = undefined;
  protocol: string | undefined = undefined;
  responseCode: number | undefined = undefined;
  responseCodeDetails: string | undefined = undefined;
  responseFlags: ResponseFlag[] = [];
  bytesReceived = 0;
  bytesSent = 0;
  upstreamHost: string | undefined = undefined;
  upstreamCluster: string | undefined = undefined;
  upstreamLocalAddress: string | undefined = undefined;
  upstreamTransportFailureReason: string | undefined = undefined;
  routeName: string | undefined = undefined;
  virtualHostName: string | undefined = undefined;
  requestId: string | undefined = undefined;
  downstreamRemoteAddress: string;
  downstreamDirectRemoteAddress: string;
  downstreamLocalAddress: string;
  requestHeaders: HeaderMap | undefined = undefined;
  responseHeaders: HeaderMap | undefined = undefined;
  responseTrailers: HeaderMap | undefined = undefined;
  connectionId: number | undefined;
  connectionTerminationDetails: string | undefined = undefined;
  tls: { version?: string; cipher?: string; sni?: string; peerSubject?: string } | undefined = undefined;
  attemptCount: number | undefined = undefined;

  constructor(
    remote: string,
    local: string,
    directRemote: string,
    connectionId: number | undefined,
    startMono: number,
  ) {
    this.startMono = startMono;
    this.downstreamRemoteAddress = remote;
    this.downstreamDirectRemoteAddress = directRemote;
    this.downstreamLocalAddress = local;
    this.connectionId = connectionId;
  }
}

/**
 * Creates an empty StreamInfo for a new stream. `startMono` defaults to `performance.now()`; the HTTP connection
 * manager passes its event-loop clock (`lib/network/clock.ts`).
 */
export function newStreamInfo(
  remote: string,
  local: string,
  options: { directRemote?: string; connectionId?: number; startMono?: number } = {},
): StreamInfo {
  return new StreamInfoImpl(
    remote,
    local,
    options.directRemote ?? remote,
    options.connectionId,
    options.startMono ?? performance.now(),
  );
}

/** An access log sink created from config (`access_log` entries). */
export interface AccessLogger {
  /**
   * Writes one entry; called once per stream by the connection manager (once per connection by tcp_proxy) after
   * the stream ends, with every field final. Must not block or throw; must copy what it keeps past the call.
   */
  log(info: StreamInfo): void;
}
