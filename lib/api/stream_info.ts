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
  durationMs?: number;
  /** Milliseconds from start to the last request byte received. */
  requestCompleteMs?: number;
  /** Milliseconds from start to the first upstream response byte. */
  firstUpstreamRxMs?: number;
  /** "HTTP/1.1", "HTTP/1.0", "HTTP/2"; undefined for TCP. */
  protocol?: string;
  responseCode?: number;
  responseCodeDetails?: string;
  responseFlags: ResponseFlag[];
  bytesReceived: number;
  bytesSent: number;
  upstreamHost?: string;
  upstreamCluster?: string;
  upstreamLocalAddress?: string;
  upstreamTransportFailureReason?: string;
  routeName?: string;
  virtualHostName?: string;
  requestId?: string;
  downstreamRemoteAddress: string;
  downstreamDirectRemoteAddress: string;
  downstreamLocalAddress: string;
  requestHeaders?: HeaderMap;
  responseHeaders?: HeaderMap;
  responseTrailers?: HeaderMap;
  connectionId?: number;
  connectionTerminationDetails?: string;
  /** TLS facts, when the downstream connection is TLS. */
  tls?: { version?: string; cipher?: string; sni?: string; peerSubject?: string };
  /** Upstream retry attempts made. */
  attemptCount?: number;
}

/** Creates an empty StreamInfo for a new stream. */
export function newStreamInfo(
  remote: string,
  local: string,
  options: { directRemote?: string; connectionId?: number } = {},
): StreamInfo {
  const info: StreamInfo = {
    startTime: Date.now(),
    startMono: performance.now(),
    responseFlags: [],
    bytesReceived: 0,
    bytesSent: 0,
    downstreamRemoteAddress: remote,
    downstreamDirectRemoteAddress: options.directRemote ?? remote,
    downstreamLocalAddress: local,
  };
  if (options.connectionId !== undefined) info.connectionId = options.connectionId;
  return info;
}

/** An access log sink created from config (`access_log` entries). */
export interface AccessLogger {
  log(info: StreamInfo): void;
}
