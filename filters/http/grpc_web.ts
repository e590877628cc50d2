/**
 * `envoy.filters.http.grpc_web`: lets browsers' gRPC-Web clients reach ordinary gRPC services (Envoy's
 * `grpc_web` filter, config `envoy.extensions.filters.http.grpc_web.v3.GrpcWeb`, an empty message).
 *
 * A request whose `content-type` is `application/grpc-web`, `application/grpc-web+proto`,
 * `application/grpc-web-text` or `application/grpc-web-text+proto` (and which has a `:path`) becomes a gRPC request:
 * `content-type: application/grpc`, `te: trailers`, `grpc-accept-encoding: identity,deflate,gzip` unless the client
 * sent one, no `content-length`; a `-text` body is base64-decoded on the fly, whatever the chunk boundaries. The
 * response goes back as `application/grpc-web+proto`, or `application/grpc-web-text+proto` (base64, one
 * padded block per gRPC frame, so that each message reaches the client at once) when the client's `accept` asks for
 * text; its trailers become a trailer frame at the end of the body (flag byte 0x80, a 4-byte length, then
 * `name:value\r\n` lines). A trailers-only response (`grpc-status` in headers that end the stream) keeps its status
 * in the headers, as in Envoy. A response that is not gRPC (a 503 from a proxy, a local reply) is turned into
 * gRPC terms: `grpc-status` mapped from `:status`, `grpc-message` from the first 16 KiB of its body, no body. Other
 * requests pass untouched; the filter does no CORS.
 *
 * Invalid base64 is answered with a 400 (`Bad gRPC-web request, invalid base64 data.`, details
 * `grpc_base_64_decode_failed` or `grpc_base_64_decode_failed_bad_size`), which the filter then carries as
 * `grpc-status` 13 like any non-gRPC response.
 *
 * Stats, as Envoy's gRPC stats with protocol `grpc-web`, under the cluster that served the request:
 * `cluster.<name>.grpc-web.<service>.<method>.{success,failure,total,<grpc-status>}`.
 *
 * Bodies the filter rewrites (`-text` requests and responses, trailer frames, non-gRPC responses) are consumed
 * (`"stop-no-buffer"`) and their output handed on with `injectDecodedDataToFilterChain` /
 * `injectEncodedDataToFilterChain`, so nothing is held per stream beyond a partial frame or base64 group.
 *
 * @module
 */
import type { HeaderMap } from "../../lib/api/headers.ts";
import type { StatsScope } from "../../lib/api/stats.ts";
import type {
  FilterFactoryContext,
  FilterResult,
  HttpFilterFactory,
  StreamFilter,
  StreamFilterCallbacks,
} from "../../lib/api/stream_filter.ts";
import type { ClusterManager } from "../../lib/api/upstream.ts";
import { ObjReader } from "../../lib/config/reader.ts";
import { httpToGrpcStatus } from "../../lib/stream/local_reply.ts";

/** The grpc_web filter's `@type`. */
export const GRPC_WEB_TYPE = "type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb";

/** Parsed grpc_web config: the message has no fields. */
export type GrpcWebConfig = Readonly<Record<never, never>>;

const CT_GRPC_WEB = "application/grpc-web";
const CT_GRPC_WEB_PROTO = "application/grpc-web+proto";
const CT_GRPC_WEB_TEXT = "application/grpc-web-text";
const CT_GRPC_WEB_TEXT_PROTO = "application/grpc-web-text+proto";
/** Envoy's `GrpcAcceptEncodingValues.Default`. */
const GRPC_ACCEPT_ENCODING = "identity,deflate,gzip";
/** The most of a non-gRPC response body kept for its `grpc-message` (Envoy's `MAX_BUFFERED_PLAINTEXT_LENGTH`). */
const MAX_BUFFERED_PLAINTEXT = 16384;
/** Flag byte of a gRPC-Web trailer frame. */
const TRAILER_FLAG = 0x80;
const BAD_BASE64 = "Bad gRPC-web request, invalid base64 data.";

const EMPTY = new Uint8Array(0);
const textEncoder = new TextEncoder();

function parseGrpcWebConfig(raw: Record<string, unknown>, path: string): GrpcWebConfig {
  const o = new ObjReader(raw, path);
  o.skip("@type");
  o.done();
  return {};
}

// ---- base64, hand-rolled: plain loops over bytes, no string round trips ----

const B64 = textEncoder.encode("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
/** Sextet of each base64 byte; 64 for '=', 255 for anything else. */
const B64_INV = new Uint8Array(256).fill(255);
for (let i = 0; i < 64; i++) B64_INV[B64[i]!] = i;
B64_INV[0x3d] = 64;

/** Standard base64 with padding of `src`. */
export function base64Encode(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(src.length / 3) * 4);
  let o = 0;
  let i = 0;
  for (; i + 2 < src.length; i += 3) {
    const n = (src[i]! << 16) | (src[i + 1]! << 8) | src[i + 2]!;
    out[o++] = B64[n >> 18]!;
    out[o++] = B64[(n >> 12) & 63]!;
    out[o++] = B64[(n >> 6) & 63]!;
    out[o++] = B64[n & 63]!;
  }
  const rest = src.length - i;
  if (rest > 0) {
    const n = (src[i]! << 16) | (rest === 2 ? src[i + 1]! << 8 : 0);
    out[o++] = B64[n >> 18]!;
    out[o++] = B64[(n >> 12) & 63]!;
    out[o++] = rest === 2 ? B64[(n >> 6) & 63]! : 0x3d;
    out[o++] = 0x3d;
  }
  return out;
}

/**
 * Decodes base64 arriving in chunks of any size: whole 4-character groups are decoded as they complete, the rest
 * (at most 3 characters) waits for the next chunk. Padding may end any group, so bodies made of separately
 * encoded, padded messages decode too (gRPC-Web clients send those).
 */
class Base64Stream {
  readonly #carry = new Uint8Array(4);
  #n = 0;

  /** Characters waiting for the rest of their group. */
  get pending(): number {
    return this.#n;
  }

  /** The bytes of the groups `chunk` completes, or null when the input is not base64. */
  push(chunk: Uint8Array): Uint8Array | null {
    const out = new Uint8Array(Math.floor((this.#n + chunk.length) / 4) * 3);
    let o = 0;
    const g = this.#carry;
    let n = this.#n;
    for (let i = 0; i < chunk.length; i++) {
      g[n++] = chunk[i]!;
      if (n < 4) continue;
      n = 0;
      const a = B64_INV[g[0]!]!, b = B64_INV[g[1]!]!, c = B64_INV[g[2]!]!, d = B64_INV[g[3]!]!;
      if (a > 63 || b > 63 || c > 64 || d > 64 || (c === 64 && d !== 64)) return null;
      out[o++] = (a << 2) | (b >> 4);
      if (c === 64) continue;
      out[o++] = ((b & 15) << 4) | (c >> 2);
      if (d === 64) continue;
      out[o++] = ((c & 3) << 6) | d;
    }
    this.#n = n;
    return o === out.length ? out : out.subarray(0, o);
  }
}

/**
 * Cuts a response body into whole gRPC frames (flag byte, 4-byte big-endian length, payload), keeping a partial
 * frame until the rest arrives.
 */
class FrameSplitter {
  #buf: Uint8Array = EMPTY;

  /** The bytes of the frames completed by `chunk`, one array per frame. */
  push(chunk: Uint8Array): Uint8Array[] {
    let buf = chunk;
    if (this.#buf.length > 0) {
      buf = new Uint8Array(this.#buf.length + chunk.length);
      buf.set(this.#buf);
      buf.set(chunk, this.#buf.length);
    }
    const frames: Uint8Array[] = [];
    let at = 0;
    while (buf.length - at >= 5) {
      const len = ((buf[at + 1]! << 24) >>> 0) + (buf[at + 2]! << 16) + (buf[at + 3]! << 8) + buf[at + 4]!;
      if (buf.length - at - 5 < len) break;
      frames.push(buf.subarray(at, at + 5 + len));
      at += 5 + len;
    }
    // `chunk` is only valid during the hook: keep a copy of what is left.
    this.#buf = at === buf.length ? EMPTY : buf.slice(at);
    return frames;
  }

  /** Whatever is left of an incomplete frame (the stream ended mid-frame). */
  takeRest(): Uint8Array {
    const r = this.#buf;
    this.#buf = EMPTY;
    return r;
  }
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** Percent-encodes bytes for `grpc-message` (bytes outside 0x20–0x7E, and `%`), as Envoy's `PercentEncoding`. */
function percentEncode(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    out += b < 0x20 || b > 0x7e || b === 0x25
      ? `%${b.toString(16).toUpperCase().padStart(2, "0")}`
      : String.fromCharCode(b);
  }
  return out;
}

/** Media type without parameters, trimmed. */
function mediaType(ct: string): string {
  const semi = ct.indexOf(";");
  return (semi < 0 ? ct : ct.slice(0, semi)).trimEnd();
}

/** Envoy's `Grpc::Common::isGrpcResponseHeaders`: trailers-only needs `grpc-status`, else 200 and a gRPC type. */
function isGrpcResponse(h: HeaderMap, endStream: boolean): boolean {
  if (endStream) return h.has("grpc-status");
  if (h.get(":status") !== "200") return false;
  const ct = h.get("content-type");
  if (ct === undefined || !ct.startsWith("application/grpc")) return false;
  if (ct.length === 16) return true;
  const c = ct.charCodeAt(16);
  return c === 0x2b /* + */ || c === 0x3b /* ; */;
}

/** A 200 with a proto-encoded gRPC-Web content type (an upstream that speaks gRPC-Web itself). */
function isGrpcWebProtoResponse(h: HeaderMap): boolean {
  if (h.get(":status") !== "200") return false;
  const ct = h.get("content-type");
  if (ct === undefined) return false;
  const t = mediaType(ct).toLowerCase();
  return t === CT_GRPC_WEB || t === CT_GRPC_WEB_PROTO;
}

/** What the filter's streams share: where to count per-method stats. */
interface GrpcWebShared {
  readonly clusterManager: ClusterManager | undefined;
}

/** The per-stream grpc_web filter. */
export class GrpcWebFilter implements StreamFilter {
  readonly #cb: StreamFilterCallbacks;
  readonly #shared: GrpcWebShared;
  /** True once the request was recognised as gRPC-Web. */
  #active = false;
  #requestContentType = "";
  #path = "";
  /** Set for a `-text` request body. */
  #requestText: Base64Stream | undefined;
  /** Set when the client asked for a `-text` response. */
  #responseFrames: FrameSplitter | undefined;
  /** A non-gRPC response being turned into a gRPC status: its held headers and the start of its body. */
  #plain: { headers: HeaderMap; chunks: Uint8Array[]; size: number } | undefined;
  #done = false;

  constructor(cb: StreamFilterCallbacks, shared: GrpcWebShared) {
    this.#cb = cb;
    this.#shared = shared;
  }

  decodeHeaders(headers: HeaderMap, _endStream: boolean): FilterResult {
    const ct = headers.get("content-type");
    if (
      ct === undefined || !headers.has(":path") ||
      (ct !== CT_GRPC_WEB && ct !== CT_GRPC_WEB_PROTO && ct !== CT_GRPC_WEB_TEXT && ct !== CT_GRPC_WEB_TEXT_PROTO)
    ) {
      return "continue";
    }
    this.#active = true;
    this.#requestContentType = ct;
    this.#path = headers.get(":path")!;
    // content-length counted the HTTP/1.1 body, not what the upstream will receive (-text shrinks it).
    headers.remove("content-length");
    headers.set("content-type", "application/grpc");
    const accept = headers.get("accept");
    if (accept === CT_GRPC_WEB_TEXT || accept === CT_GRPC_WEB_TEXT_PROTO) this.#responseFrames = new FrameSplitter();
    headers.set("te", "trailers");
    if (!headers.has("grpc-accept-encoding")) headers.set("grpc-accept-encoding", GRPC_ACCEPT_ENCODING);
    if (ct === CT_GRPC_WEB_TEXT || ct === CT_GRPC_WEB_TEXT_PROTO) this.#requestText = new Base64Stream();
    return "continue";
  }

  decodeData(data: Uint8Array, endStream: boolean): FilterResult {
    const dec = this.#requestText;
    if (dec === undefined) return "continue";
    if (this.#done) return "stop-no-buffer";
    const out = dec.push(data);
    if (out === null) {
      this.#reject(400, BAD_BASE64, "grpc_base_64_decode_failed");
      return "stop-no-buffer";
    }
    if (endStream && dec.pending !== 0) {
      // Padding is mandatory: a body whose length is not a multiple of 4 is cut short.
      this.#reject(400, BAD_BASE64, "grpc_base_64_decode_failed_bad_size");
      return "stop-no-buffer";
    }
    if (out.length > 0 || endStream) this.#cb.injectDecodedDataToFilterChain(out, endStream);
    return "stop-no-buffer";
  }

  /** Answers the request locally as Envoy does: with the gRPC-Web content type back, so the reply is plain HTTP. */
  #reject(status: number, body: string, details: string): void {
    this.#done = true;
    this.#cb.requestHeaders.set("content-type", this.#requestContentType);
    this.#cb.sendLocalReply(status, body, { details });
  }

  encodeHeaders(headers: HeaderMap, endStream: boolean): FilterResult {
    if (!this.#active) return "continue";
    if (endStream) this.#chargeStats(headers.get("grpc-status"));
    const transform = !isGrpcResponse(headers, endStream) && !isGrpcWebProtoResponse(headers);
    headers.remove("content-length");
    headers.set("content-type", this.#responseFrames !== undefined ? CT_GRPC_WEB_TEXT_PROTO : CT_GRPC_WEB_PROTO);
    if (endStream || !transform) return "continue";
    this.#plain = { headers, chunks: [], size: 0 };
    return "stop";
  }

  encodeData(data: Uint8Array, endStream: boolean): FilterResult {
    if (!this.#active) return "continue";
    const plain = this.#plain;
    if (plain !== undefined) {
      const room = MAX_BUFFERED_PLAINTEXT - plain.size;
      if (room > 0 && data.length > 0) {
        const part = data.slice(0, room);
        plain.chunks.push(part);
        plain.size += part.length;
      }
      if (endStream) this.#sendPlainAsGrpc();
      return "stop-no-buffer";
    }
    const frames = this.#responseFrames;
    if (frames === undefined) return "continue";
    const parts = frames.push(data).map(base64Encode);
    if (endStream) {
      const rest = frames.takeRest();
      if (rest.length > 0) parts.push(base64Encode(rest));
    }
    if (parts.length > 0 || endStream) {
      this.#cb.injectEncodedDataToFilterChain(parts.length === 0 ? EMPTY : concat(parts), endStream);
    }
    return "stop-no-buffer";
  }

  encodeTrailers(trailers: HeaderMap): FilterResult {
    if (!this.#active) return "continue";
    this.#chargeStats(trailers.get("grpc-status"));
    if (this.#plain !== undefined) {
      this.#sendPlainAsGrpc();
      return "stop-no-buffer";
    }
    let block = "";
    for (const [k, v] of trailers) block += `${k}:${v}\r\n`;
    const text = textEncoder.encode(block);
    let frame: Uint8Array = new Uint8Array(5 + text.length);
    frame[0] = TRAILER_FLAG;
    new DataView(frame.buffer).setUint32(1, text.length);
    frame.set(text, 5);
    const frames = this.#responseFrames;
    if (frames !== undefined) {
      const rest = frames.takeRest();
      frame = rest.length > 0 ? concat([base64Encode(rest), base64Encode(frame)]) : base64Encode(frame);
    }
    // The trailers travel in the body and end it.
    this.#cb.injectEncodedDataToFilterChain(frame, true);
    return "stop-no-buffer";
  }

  /**
   * Ends a non-gRPC response as a headers-only gRPC status carrying its body as `grpc-message`: the headers this
   * filter stopped are sent anew, ending the stream, and are never continued.
   */
  #sendPlainAsGrpc(): void {
    const plain = this.#plain!;
    this.#plain = undefined;
    const h = plain.headers;
    h.set("grpc-message", percentEncode(concat(plain.chunks.length > 0 ? plain.chunks : [EMPTY])));
    h.set("grpc-status", String(httpToGrpcStatus(Number(h.get(":status")))));
    h.set("content-length", "0");
    this.#cb.encodeHeaders(h, true);
  }

  /** `cluster.<name>.grpc-web.<service>.<method>.*`, for a `/<service>/<method>` path and a known cluster. */
  #chargeStats(status: string | undefined): void {
    if (status === undefined) return;
    const name = this.#cb.streamInfo.upstreamCluster;
    const cm = this.#shared.clusterManager;
    if (name === undefined || cm === undefined) return;
    const cluster = cm.get(name);
    const m = /^\/([^/?]+)\/([^/?]+)$/.exec(this.#path);
    if (cluster === undefined || m === null) return;
    const s: StatsScope = cluster.info.scope.scope(`grpc-web.${m[1]}.${m[2]}`);
    s.counter(status).inc();
    s.counter(status === "0" ? "success" : "failure").inc();
    s.counter("total").inc();
  }
}

/** The config-time step: the streams of one config share the cluster manager for their stats. */
export function createGrpcWebFactory(
  _config: GrpcWebConfig,
  context: FilterFactoryContext,
): (callbacks: StreamFilterCallbacks) => StreamFilter {
  const shared: GrpcWebShared = { clusterManager: context.clusterManager };
  return (callbacks) => new GrpcWebFilter(callbacks, shared);
}

/** The grpc_web filter factory. */
export const grpcWebFilterFactory: HttpFilterFactory<GrpcWebConfig> = {
  name: "envoy.filters.http.grpc_web",
  configTypes: [GRPC_WEB_TYPE],
  parseConfig: parseGrpcWebConfig,
  createFactory: createGrpcWebFactory,
  create(config, callbacks, context) {
    return createGrpcWebFactory(config, context)(callbacks);
  },
};
