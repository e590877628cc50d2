/**
 * Sample {@link StreamInfo}s for the access log tests.
 *
 * @module
 */
import { HeaderMap } from "../../lib/api/headers.ts";
import type { StreamInfo } from "../../lib/api/stream_info.ts";

/** 2026-11-24T14:00:00.123Z */
const START = Date.UTC(2026, 10, 24, 14, 0, 0, 123);

/** A completed HTTP/1.1 request with every field set. */
export function sampleInfo(): StreamInfo {
  return {
    startTime: START,
    startMono: 1000,
    durationMs: 17.8,
    requestCompleteMs: 2.2,
    firstUpstreamRxMs: 9.6,
    protocol: "HTTP/1.1",
    responseCode: 200,
    responseCodeDetails: "via_upstream",
    responseFlags: [],
    bytesReceived: 12,
    bytesSent: 345,
    upstreamHost: "10.1.1.1:8080",
    upstreamCluster: "payments",
    upstreamLocalAddress: "10.1.1.2:40000",
    routeName: "api",
    virtualHostName: "vh",
    downstreamRemoteAddress: "192.168.1.5:51000",
    downstreamDirectRemoteAddress: "192.168.1.6:51001",
    downstreamLocalAddress: "10.0.0.1:10000",
    requestHeaders: HeaderMap.from([
      [":method", "GET"],
      [":path", "/api/v1?x=1"],
      [":authority", "example.com"],
      [":scheme", "http"],
      ["user-agent", "curl/8.5.0"],
      ["x-forwarded-for", "10.0.0.9"],
      ["x-request-id", "abc-123"],
    ]),
    responseHeaders: HeaderMap.from([[":status", "200"], ["x-envoy-upstream-service-time", "9"], [
      "content-type",
      "text/plain",
    ]]),
    responseTrailers: HeaderMap.from([["grpc-status", "0"]]),
    connectionId: 42,
    attemptCount: 2,
    tls: { version: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256", sni: "example.com", peerSubject: "CN=client" },
  };
}

/** A TCP connection reset before any response: most fields unknown. */
export function bareInfo(): StreamInfo {
  return {
    startTime: START,
    startMono: 0,
    responseFlags: ["UF", "URX"],
    bytesReceived: 0,
    bytesSent: 0,
    downstreamRemoteAddress: "[::1]:5000",
    downstreamDirectRemoteAddress: "[::1]:5000",
    downstreamLocalAddress: "[::1]:80",
  };
}
