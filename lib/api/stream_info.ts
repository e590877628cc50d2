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
  | "DF"; // DNS resolution failure

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
  responseCode?: number | undefined;
  responseCodeDetails?: string | undefined;
  responseFlags: ResponseFlag[];
  bytesReceived: number;
  bytesSent: number;
  upstreamHost?: string | undefined;
  upstreamCluster?: string | undefined;
  upstreamLocalAddress?: string | undefined;
  upstreamTransportFailureReason?: string | undefined;
  routeName?: string | undefined;
  virtualHostName?: string | undefined;
  requestId?: string | undefined;
  downstreamRemoteAddress: string;
  downstreamDirectRemoteAddress: string;
  downstreamLocalAddress: string;
  requestHeaders?: HeaderMap | undefined;
  responseHeaders?: HeaderMap | undefined;
  responseTrailers?: HeaderMap | undefined;
  connectionId?: number | undefined;
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
  log(info: StreamInfo): void;
}
