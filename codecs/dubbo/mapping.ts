/**
 * Dubbo ↔ stream headers.
 *
 * A request becomes headers the router and filters match on, as MOSN and Envoy's generic proxy map them:
 * - `:method` `POST`, `:path` `/<service>/<method>`, `:authority` `<service>` — so ordinary route tables work
 *   (virtual host by service, path prefix `/<service>/`), as for gRPC;
 * - `service` (the service path; an `interface` attachment overrides it, as MOSN), `version`, `method`, `group`
 *   (attachment), `dubbo` (the protocol version the client speaks);
 * - every string attachment, its name lower-cased, unless a header of that name is already set (so an attachment
 *   cannot spoof the fields above) or it starts with `:` or `x-dubbo-`;
 * - `x-dubbo-oneway: true` for a one-way request (no response is expected);
 * - `x-dubbo-timeout`: the `timeout` attachment (ms) when it is a number, the caller's own deadline (the RPC
 *   proxy answers SERVER_TIMEOUT when it passes).
 *
 * A response becomes `:status` (the nearest HTTP status, for stats, access logs and retry policies) and
 * `x-dubbo-status` (the status byte, written back as is). A local reply maps its HTTP status (and, for 503, its
 * text) to a Dubbo status byte; a reply header `x-dubbo-status` overrides the mapping.
 *
 * @module
 */
import type { LocalReplyEncoding, LocalReplyInput } from "../../lib/api/codec.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import { localResponseBody } from "./encoder.ts";
import { type DubboInvocation, DubboStatus } from "./types.ts";

/** Header carrying a response's Dubbo status byte (decimal). */
export const STATUS_HEADER = "x-dubbo-status";
/** Header carrying the request's own timeout in ms (the `timeout` attachment). */
export const TIMEOUT_HEADER = "x-dubbo-timeout";
/** Header marking a one-way request. */
export const ONEWAY_HEADER = "x-dubbo-oneway";

/** The request headers of an invocation; see the module doc. */
export function requestHeaders(inv: DubboInvocation, oneway: boolean): HeaderMap {
  let service = inv.path;
  let group: string | undefined;
  let timeout: string | undefined;
  const atts = inv.attachments;
  for (let i = 0; i < atts.length; i++) {
    const [k, v] = atts[i]!;
    if (k === "interface" && v !== "") service = v;
    else if (k === "group") group = v;
    else if (k === "timeout" && /^\d{1,9}$/.test(v)) timeout = v;
  }
  const kv = [
    ":method",
    "POST",
    ":path",
    `/${service}/${inv.method}`,
    ":authority",
    service,
    "service",
    service,
    "version",
    inv.version,
    "method",
    inv.method,
  ];
  if (group !== undefined) kv.push("group", group);
  if (inv.dubboVersion !== "") kv.push("dubbo", inv.dubboVersion);
  if (oneway) kv.push(ONEWAY_HEADER, "true");
  if (timeout !== undefined) kv.push(TIMEOUT_HEADER, timeout);
  const fixed = kv.length;
  for (let i = 0; i < atts.length; i++) {
    const [k0, v] = atts[i]!;
    const k = lower(k0);
    if (k === "" || k.charCodeAt(0) === 58 || k.startsWith("x-dubbo-") || k === "group") continue;
    let dup = false;
    for (let j = 0; j < fixed; j += 2) {
      if (kv[j] === k) {
        dup = true;
        break;
      }
    }
    if (!dup) kv.push(k, v);
  }
  return new HeaderMap(kv);
}

function lower(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) return s.toLowerCase();
  }
  return s;
}

/** The HTTP status standing for a Dubbo status byte (for stats, logs, retry-on and outlier detection). */
export function httpStatusOf(status: number): number {
  switch (status) {
    case DubboStatus.OK:
      return 200;
    case DubboStatus.CLIENT_TIMEOUT:
    case DubboStatus.SERVER_TIMEOUT:
      return 504;
    case DubboStatus.BAD_REQUEST:
    case DubboStatus.CLIENT_ERROR:
      return 400;
    case DubboStatus.BAD_RESPONSE:
      return 502;
    case DubboStatus.SERVICE_NOT_FOUND:
      return 404;
    case DubboStatus.SERVER_THREADPOOL_EXHAUSTED_ERROR:
      return 503;
    default:
      return 500;
  }
}

/**
 * The Dubbo status byte for an HTTP status of a local reply: 2xx OK; 404 SERVICE_NOT_FOUND (no route, no
 * cluster); 408 CLIENT_TIMEOUT; 504 SERVER_TIMEOUT; 429 SERVER_THREADPOOL_EXHAUSTED; 503 by its text — overflow
 * SERVER_THREADPOOL_EXHAUSTED, no healthy upstream SERVICE_NOT_FOUND (no provider), otherwise (upstream reset or
 * connect failure) SERVICE_ERROR; other 4xx BAD_REQUEST; other 5xx SERVICE_ERROR.
 */
export function dubboStatusOf(http: number, body = ""): number {
  if (http >= 200 && http < 300) return DubboStatus.OK;
  switch (http) {
    case 404:
      return DubboStatus.SERVICE_NOT_FOUND;
    case 408:
      return DubboStatus.CLIENT_TIMEOUT;
    case 504:
      return DubboStatus.SERVER_TIMEOUT;
    case 429:
      return DubboStatus.SERVER_THREADPOOL_EXHAUSTED_ERROR;
    case 503:
      if (body.includes("overflow")) return DubboStatus.SERVER_THREADPOOL_EXHAUSTED_ERROR;
      if (body.includes("no healthy upstream")) return DubboStatus.SERVICE_NOT_FOUND;
      return DubboStatus.SERVICE_ERROR;
  }
  return http < 500 ? DubboStatus.BAD_REQUEST : DubboStatus.SERVICE_ERROR;
}

/** The response headers for a Dubbo status byte. */
export function responseHeaders(status: number): HeaderMap {
  return new HeaderMap([":status", String(httpStatusOf(status)), STATUS_HEADER, String(status)]);
}

/** The status byte of response headers: `x-dubbo-status` when present and valid, else mapped from `:status`. */
export function statusOfHeaders(h: HeaderMap): number {
  const v = h.get(STATUS_HEADER);
  if (v !== undefined) {
    const n = Number(v);
    if (Number.isInteger(n) && n >= 0 && n <= 255) return n;
  }
  return dubboStatusOf(Number(h.get(":status") ?? 500));
}

/**
 * The Dubbo codec's local replies: a response with the mapped status byte and the message as a hessian2 string
 * (a Java client shows it in its `RemotingException`). An empty text gets one naming the service and method.
 */
export function dubboLocalReply(reply: LocalReplyInput, request: HeaderMap | undefined): LocalReplyEncoding {
  const forced = reply.headers?.[STATUS_HEADER];
  const status = forced !== undefined && /^\d{1,3}$/.test(forced)
    ? Number(forced)
    : dubboStatusOf(reply.status, reply.body);
  let message = reply.body.trim();
  if (message === "") {
    const svc = request?.get("service") ?? "";
    const ver = request?.get("version") ?? "";
    const m = request?.get("method") ?? "";
    const what = `service ${svc}${ver ? `:${ver}` : ""} method ${m}`;
    message = status === DubboStatus.SERVICE_NOT_FOUND
      ? `ferry: no route for ${what}`
      : `ferry: ${reply.status} for ${what}`;
  } else message = `ferry: ${message}`;
  const headers = responseHeaders(status);
  headers.set(":status", String(reply.status));
  return { headers, body: localResponseBody(status, message) };
}
