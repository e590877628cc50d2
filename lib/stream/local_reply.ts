/**
 * Local replies in HTTP's terms, the mapping the connection manager uses when the codec brings none of its own
 * (`CodecFactory.localReply`): a plain-text response, or for a gRPC request (content type `application/grpc...`)
 * a trailers-only gRPC response whose `grpc-status` is mapped from the HTTP status as Envoy's
 * `Grpc::Utility::httpToGrpcStatus` does, so a gRPC client sees a gRPC error instead of an HTTP one.
 *
 * @module
 */
import type { LocalReplyEncoding, LocalReplyInput, LocalReplyMapper } from "../api/codec.ts";
import { HeaderMap } from "../api/headers.ts";
import { isGrpcContentType } from "../router/matchers.ts";

const EMPTY = new Uint8Array(0);
const textEncoder = new TextEncoder();

/** gRPC status codes (grpc/doc/statuscodes.md) that local replies use. */
export const GrpcStatus = {
  UNKNOWN: 2,
  PERMISSION_DENIED: 7,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** The gRPC status for an HTTP status (grpc/doc/http-grpc-status-mapping.md, as Envoy maps local replies). */
export function httpToGrpcStatus(status: number): number {
  switch (status) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

/** Percent-encodes a `grpc-message` value (the gRPC spec: bytes outside 0x20–0x7E, and `%`). */
export function encodeGrpcMessage(msg: string): string {
  let plain = true;
  for (let i = 0; i < msg.length; i++) {
    const c = msg.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return msg;
  let out = "";
  for (const b of textEncoder.encode(msg)) {
    out += b < 0x20 || b > 0x7e || b === 0x25
      ? `%${b.toString(16).toUpperCase().padStart(2, "0")}`
      : String.fromCharCode(b);
  }
  return out;
}

/**
 * HTTP's local-reply mapping: text with `content-length` (and `content-type` when there is a body), or a
 * trailers-only gRPC status for gRPC requests. `date` is added by the caller, which also knows `x-request-id`.
 */
export const httpLocalReply: LocalReplyMapper = (reply: LocalReplyInput, request): LocalReplyEncoding => {
  if (request !== undefined && isGrpcContentType(request.get("content-type"))) {
    const h = new HeaderMap([":status", "200", "content-type", "application/grpc"]);
    if (reply.headers) { for (const k in reply.headers) h.set(k.toLowerCase(), reply.headers[k]!); }
    h.set("grpc-status", String(reply.grpcStatus ?? httpToGrpcStatus(reply.status)));
    const msg = reply.body.endsWith("\n") ? reply.body.slice(0, -1) : reply.body;
    if (msg) h.set("grpc-message", encodeGrpcMessage(msg));
    return { headers: h };
  }
  const h = new HeaderMap([":status", String(reply.status)]);
  const bytes = reply.body ? textEncoder.encode(reply.body) : EMPTY;
  if (reply.headers) { for (const k in reply.headers) h.set(k.toLowerCase(), reply.headers[k]!); }
  if (bytes.length > 0 || !h.has("content-length")) h.set("content-length", String(bytes.length));
  if (bytes.length > 0 && !h.has("content-type")) h.set("content-type", reply.contentType ?? "text/plain");
  return reply.isHead || bytes.length === 0 ? { headers: h } : { headers: h, body: bytes };
};
