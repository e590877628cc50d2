/**
 * Bolt ↔ stream headers, and Bolt local replies.
 *
 * A request frame becomes these stream headers, so that an ordinary Envoy `RouteConfiguration` routes it:
 * - `:method` `POST`, `:scheme` `http`, `:authority` the service's interface (the `service` value without its
 *   `:version`, so a virtual host per service, or a `*` domain, matches), `:path` `/<interface>/<method>`;
 * - every key of the frame's header map, lower-cased (keys spelt otherwise are listed in `x-bolt-case` and get their
 *   spelling back upstream), e.g. `service` (`interface:version`, sofa's `serverSignature`) and the `sofa_head_*`
 *   keys; empty keys and keys that would spoof Ferry's own (`:*`, `x-bolt-*`) are dropped;
 * - routing keys added when the map lacks them (listed in `x-bolt-synthetic`, never sent upstream): `service` (from
 *   `sofa_head_target_service`, as MOSN), `version` (the part after the interface in `service`, which sofa writes
 *   as `interface:version[:uniqueId]`) and `method` (`sofa_head_method_name`, or the `methodName` of a hessian2
 *   `SofaRequest` body);
 * - the fixed fields as `x-bolt-*`: `x-bolt-proto`, `x-bolt-ver1`, `x-bolt-switch`, `x-bolt-type` (`request` |
 *   `oneway`), `x-bolt-codec` (`hessian2`, `protobuf` or the number), `x-bolt-timeout` (ms), `x-bolt-class`,
 *   `x-bolt-request-id` (the downstream id, for logs; upstream ids are the client codec's own) and `x-bolt-hessian`
 *   (`final` or `draft`: the hessian form of the body, which local replies follow).
 * A response becomes `:status` (200 for SUCCESS, otherwise the HTTP status of {@link httpStatusOf}), `x-bolt-status`
 * (the exact Bolt status, which the downstream encoder writes back), `x-bolt-class`, `x-bolt-codec` and its header
 * map. Bodies are the frame's content bytes, never re-serialized.
 *
 * @module
 */
import type { LocalReplyEncoding, LocalReplyInput } from "../../lib/api/codec.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import { BoltStatus, CODEC_HESSIAN2, CODEC_PROTOBUF, ERROR_CLASS, TYPE_ONEWAY } from "./types.ts";
import type { BoltFrame } from "./types.ts";

/** Names of the serialization ids. */
export function codecName(id: number): string {
  return id === CODEC_HESSIAN2 ? "hessian2" : id === CODEC_PROTOBUF ? "protobuf" : String(id);
}

/** The serialization id of `x-bolt-codec`, or `fallback`. */
export function codecId(name: string | undefined, fallback: number): number {
  if (name === undefined) return fallback;
  if (name === "hessian2") return CODEC_HESSIAN2;
  if (name === "protobuf") return CODEC_PROTOBUF;
  const n = Number(name);
  return Number.isInteger(n) && n >= 0 && n <= 255 ? n : fallback;
}

/** Stream headers that never go into an upstream or downstream Bolt header map (added by the proxy). */
const DROPPED = new Set([
  "x-forwarded-proto",
  "x-forwarded-for",
  "x-request-id",
  "server",
  "date",
  "via",
  "content-type",
  "content-length",
  "connection",
  "keep-alive",
  "transfer-encoding",
]);

function isLowerAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) return false;
  }
  return true;
}

/** Keys of a header map that never become stream headers: pseudo-headers, `x-bolt-*` and the empty key. */
function isReserved(k: string): boolean {
  return k.length === 0 || k.charCodeAt(0) === 58 /* ':' */ || k.startsWith("x-bolt-");
}

/** The request headers of a request frame; see the module doc. */
export function requestHeaders(f: BoltFrame): HeaderMap {
  const kv: string[] = [":method", "POST", ":scheme", "http", ":authority", "", ":path", ""];
  const wire = f.header;
  let cased: string | undefined;
  let service: string | undefined;
  let targetService: string | undefined;
  let method: string | undefined;
  for (let i = 0; i < wire.length; i += 2) {
    let k = wire[i]!;
    const v = wire[i + 1]!;
    if (!isLowerAscii(k)) {
      cased = cased === undefined ? k : `${cased},${k}`;
      k = k.toLowerCase();
    }
    // The fixed fields and pseudo-headers are Ferry's to set: a header-map key cannot spoof them.
    if (isReserved(k)) continue;
    if (k === "service") service ??= v;
    else if (k === "sofa_head_target_service") targetService = v;
    else if (k === "sofa_head_method_name") method = v;
    kv.push(k, v);
  }
  let synthetic: string | undefined;
  if (service === undefined && targetService !== undefined) {
    service = targetService;
    kv.push("service", service);
    synthetic = "service";
  }
  const svc = service ?? "";
  // sofa's serverSignature: `interface:version[:uniqueId]`.
  const colon = svc.indexOf(":");
  const iface = colon >= 0 ? svc.slice(0, colon) : svc;
  if (colon >= 0 && !has(wire, "version")) {
    const end = svc.indexOf(":", colon + 1);
    kv.push("version", svc.slice(colon + 1, end < 0 ? svc.length : end));
    synthetic = synthetic === undefined ? "version" : `${synthetic},version`;
  }
  if (method === undefined && f.codec === CODEC_HESSIAN2) method = hessianMethodName(f.content);
  if (method !== undefined && !has(wire, "method")) {
    kv.push("method", method);
    synthetic = synthetic === undefined ? "method" : `${synthetic},method`;
  }
  kv[5] = iface;
  kv[7] = `/${iface}/${method ?? ""}`;
  if (synthetic !== undefined) kv.push("x-bolt-synthetic", synthetic);
  if (cased !== undefined) kv.push("x-bolt-case", cased);
  kv.push(
    "x-bolt-proto",
    String(f.proto),
    "x-bolt-type",
    f.type === TYPE_ONEWAY ? "oneway" : "request",
    "x-bolt-codec",
    codecName(f.codec),
    "x-bolt-timeout",
    String(f.timeout),
    "x-bolt-class",
    f.className,
    "x-bolt-request-id",
    String(f.requestId),
  );
  if (f.proto === 2) kv.push("x-bolt-ver1", String(f.ver1), "x-bolt-switch", String(f.switchCode));
  if (f.codec === CODEC_HESSIAN2) {
    const b0 = f.content[0];
    if (b0 === 0x4f) kv.push("x-bolt-hessian", "draft");
    else if (b0 === 0x43) kv.push("x-bolt-hessian", "final");
  }
  return new HeaderMap(kv);
}

function has(flat: readonly string[], key: string): boolean {
  for (let i = 0; i < flat.length; i += 2) if (flat[i]!.toLowerCase() === key) return true;
  return false;
}

/** The response headers of a response frame; see the module doc. */
export function responseHeaders(f: BoltFrame): HeaderMap {
  const kv: string[] = [
    ":status",
    String(httpStatusOf(f.status)),
    "x-bolt-status",
    String(f.status),
    "x-bolt-class",
    f.className,
    "x-bolt-codec",
    codecName(f.codec),
  ];
  const wire = f.header;
  let cased: string | undefined;
  for (let i = 0; i < wire.length; i += 2) {
    let k = wire[i]!;
    if (!isLowerAscii(k)) {
      cased = cased === undefined ? k : `${cased},${k}`;
      k = k.toLowerCase();
    }
    if (isReserved(k)) continue;
    kv.push(k, wire[i + 1]!);
  }
  if (cased !== undefined) kv.push("x-bolt-case", cased);
  return new HeaderMap(kv);
}

/**
 * The Bolt header map to send for stream headers `h`: every field but pseudo-headers, `x-bolt-*`, `x-envoy-*`,
 * the proxy's own HTTP fields and the synthetic routing keys; keys listed in `x-bolt-case` get their spelling back.
 */
export function wireHeader(h: HeaderMap): string[] {
  const kv = h.kv;
  let skip: string[] | undefined;
  let cased: Map<string, string> | undefined;
  for (let i = 0; i < kv.length; i += 2) {
    const k = kv[i]!;
    if (k === "x-bolt-synthetic") skip = kv[i + 1]!.split(",");
    else if (k === "x-bolt-case") {
      cased = new Map();
      for (const c of kv[i + 1]!.split(",")) cased.set(c.toLowerCase(), c);
    }
  }
  const out: string[] = [];
  for (let i = 0; i < kv.length; i += 2) {
    const k = kv[i]!;
    const c0 = k.charCodeAt(0);
    if (c0 === 58 /* ':' */) continue;
    if (c0 === 120 /* 'x' */ && (k.startsWith("x-bolt-") || k.startsWith("x-envoy-"))) continue;
    if (DROPPED.has(k)) continue;
    if (skip !== undefined && skip.includes(k)) continue;
    out.push(cased?.get(k) ?? k, kv[i + 1]!);
  }
  return out;
}

/** The HTTP status that stands for a Bolt status in the stream model (stats, retries, outlier detection). */
export function httpStatusOf(status: number): number {
  switch (status) {
    case BoltStatus.SUCCESS:
      return 200;
    case BoltStatus.NO_PROCESSOR:
      return 404;
    case BoltStatus.SERVER_THREADPOOL_BUSY:
    case BoltStatus.CONNECTION_CLOSED:
      return 503;
    case BoltStatus.TIMEOUT:
      return 504;
    default:
      return 500;
  }
}

/**
 * The Bolt status for an HTTP status of a local reply: 404 (no route) → NO_PROCESSOR; 408/504 → TIMEOUT; 503 with
 * an overflow text → SERVER_THREADPOOL_BUSY, with "no healthy upstream" → CONNECTION_CLOSED; other 503 (upstream
 * reset or connect failure) and every other error → SERVER_EXCEPTION; 429 → SERVER_THREADPOOL_BUSY.
 */
export function boltStatusOf(status: number, body: string): number {
  if (status < 300) return BoltStatus.SUCCESS;
  if (status === 404) return BoltStatus.NO_PROCESSOR;
  if (status === 408 || status === 504) return BoltStatus.TIMEOUT;
  if (status === 429) return BoltStatus.SERVER_THREADPOOL_BUSY;
  if (status === 503) {
    if (body.includes("overflow") || body.includes("pending")) return BoltStatus.SERVER_THREADPOOL_BUSY;
    if (body.includes("no healthy upstream")) return BoltStatus.CONNECTION_CLOSED;
  }
  return BoltStatus.SERVER_EXCEPTION;
}

/**
 * Bolt local replies: the status of {@link boltStatusOf} in `x-bolt-status`, and the message in a hessian2
 * `com.alipay.remoting.rpc.exception.RpcServerException` (what sofa clients decode from the content of a
 * non-SUCCESS response, and show as the error's message), in the hessian form the request's body used
 * ({@link hessianError}).
 */
export function boltLocalReply(reply: LocalReplyInput, request: HeaderMap | undefined): LocalReplyEncoding {
  const status = boltStatusOf(reply.status, reply.body);
  const svc = request?.get("service");
  const what = reply.body.trim() || (status === BoltStatus.NO_PROCESSOR ? "no route" : `status ${reply.status}`);
  const text = svc !== undefined ? `ferry: ${what} (service ${svc})` : `ferry: ${what}`;
  const headers = new HeaderMap([
    ":status",
    String(reply.status),
    "x-bolt-status",
    String(status),
    "x-bolt-class",
    ERROR_CLASS,
    "x-bolt-codec",
    request?.get("x-bolt-codec") ?? "hessian2",
  ]);
  return { headers, body: hessianError(text, request?.get("x-bolt-hessian") === "draft" ? "draft" : "final") };
}

function hessianInt(n: number): number[] {
  if (n >= -16 && n <= 47) return [0x90 + n];
  return [0xc8 + (n >> 8), n & 0xff];
}

/**
 * An `RpcServerException` carrying `message`, hessian2-encoded. `form` follows the peer: `final` is Hessian 2.0 as
 * Java's sofa-hessian reads it (definition `C`, instance `0x60`), `draft` the 2.0 draft that `hessian.js` reads
 * (definition `O` + int length + raw name, instance `o` + int). Fields: `detailMessage`, `stackTrace` (an empty list,
 * or null in the draft form), `cause` (null).
 */
export function hessianError(message: string, form: "final" | "draft"): Uint8Array {
  const enc = new TextEncoder();
  const fields = ["detailMessage", "stackTrace", "cause"].map((f) => [...hessianString(f)]);
  const msg = [...hessianString(message, form)];
  const out: number[] = [];
  if (form === "final") {
    out.push(0x43, ...hessianString(ERROR_CLASS), ...hessianInt(3));
    for (const f of fields) out.push(...f);
    out.push(0x60, ...msg, 0x78, 0x4e);
  } else {
    out.push(0x4f, ...hessianInt(ERROR_CLASS.length), ...enc.encode(ERROR_CLASS), ...hessianInt(3));
    for (const f of fields) out.push(...f);
    out.push(0x6f, ...hessianInt(0), ...msg, 0x4e, 0x4e);
  }
  return new Uint8Array(out);
}

/**
 * Encodes `s` as one hessian2 string: compact, medium (final form only: the 2.0 draft has none) or an `S` chunk;
 * longer text is cut at 65535 chars.
 */
export function hessianString(s: string, form: "final" | "draft" = "final"): Uint8Array {
  const t = s.length > 0xffff ? s.slice(0, 0xffff) : s;
  const utf8 = new TextEncoder().encode(t);
  const n = t.length;
  let head: number[];
  if (n <= 31) head = [n];
  else if (n <= 1023 && form === "final") head = [0x30 + (n >> 8), n & 0xff];
  else head = [0x53, n >> 8, n & 0xff];
  const out = new Uint8Array(head.length + utf8.length);
  out.set(head);
  out.set(utf8, head.length);
  return out;
}

/** Reads a hessian2 string at `p`: `[value, next]`, or undefined for anything else (or chunked strings). */
function readHessianString(b: Uint8Array, p: number): [string, number] | undefined {
  const t = b[p];
  if (t === undefined) return undefined;
  let n: number;
  let q: number;
  if (t <= 0x1f) [n, q] = [t, p + 1];
  else if (t >= 0x30 && t <= 0x33) {
    if (p + 1 >= b.length) return undefined;
    [n, q] = [((t - 0x30) << 8) | b[p + 1]!, p + 2];
  } else if (t === 0x53) {
    if (p + 2 >= b.length) return undefined;
    [n, q] = [(b[p + 1]! << 8) | b[p + 2]!, p + 3];
  } else return undefined;
  // n counts characters: walk UTF-8 sequences.
  let s = "";
  for (let k = 0; k < n; k++) {
    const c = b[q];
    if (c === undefined) return undefined;
    if (c < 0x80) {
      s += String.fromCharCode(c);
      q++;
    } else {
      const len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
      if (q + len > b.length) return undefined;
      s += new TextDecoder().decode(b.subarray(q, q + len));
      q += len;
    }
  }
  return [s, q];
}

/** Reads a hessian2 int at `p`. */
function readHessianInt(b: Uint8Array, p: number): [number, number] | undefined {
  const t = b[p];
  if (t === undefined) return undefined;
  if (t >= 0x80 && t <= 0xbf) return [t - 0x90, p + 1];
  if (t >= 0xc0 && t <= 0xcf && p + 1 < b.length) return [((t - 0xc8) << 8) + b[p + 1]!, p + 2];
  if (t >= 0xd0 && t <= 0xd7 && p + 2 < b.length) return [((t - 0xd4) << 16) + (b[p + 1]! << 8) + b[p + 2]!, p + 3];
  if (t === 0x49 && p + 4 < b.length) {
    return [(b[p + 1]! << 24) | (b[p + 2]! << 16) | (b[p + 3]! << 8) | b[p + 4]!, p + 5];
  }
  return undefined;
}

/**
 * The `methodName` of a hessian2-encoded `SofaRequest` at the start of `body`, or undefined when the body is not
 * shaped so. Both forms in use are read: Hessian 2.0 as Java's sofa-hessian writes it (class definition `C` with a
 * string name, then the instance `O`+index or `0x60`+index) and the 2.0 draft that `hessian.js` (sofa-bolt-node)
 * writes (definition `O` with an int length and the raw name, then the instance `o`+index). The fields before
 * `methodName` must be strings or null. Only a prefix is read; the body is not otherwise parsed.
 */
export function hessianMethodName(body: Uint8Array): string | undefined {
  const t = body[0];
  let p: number;
  if (t === 0x43 /* 'C' */) {
    const cls = readHessianString(body, 1);
    if (cls === undefined) return undefined;
    p = cls[1];
  } else if (t === 0x4f /* 'O', 2.0 draft */) {
    const len = readHessianInt(body, 1);
    if (len === undefined || len[0] < 0) return undefined;
    p = len[1] + len[0];
  } else return undefined;
  const cnt = readHessianInt(body, p);
  if (cnt === undefined || cnt[0] < 0 || cnt[0] > 64) return undefined;
  p = cnt[1];
  let at = -1;
  for (let i = 0; i < cnt[0]; i++) {
    const f = readHessianString(body, p);
    if (f === undefined) return undefined;
    if (f[0] === "methodName") at = i;
    p = f[1];
  }
  if (at < 0) return undefined;
  const o = body[p];
  if (o === (t === 0x43 ? 0x4f : 0x6f)) {
    const idx = readHessianInt(body, p + 1);
    if (idx === undefined) return undefined;
    p = idx[1];
  } else if (t === 0x43 && o !== undefined && o >= 0x60 && o <= 0x6f) p++;
  else return undefined;
  for (let i = 0; i <= at; i++) {
    if (body[p] === 0x4e /* 'N' */) {
      if (i === at) return undefined;
      p++;
      continue;
    }
    const v = readHessianString(body, p);
    if (v === undefined) return undefined;
    if (i === at) return v[0];
    p = v[1];
  }
  return undefined;
}
