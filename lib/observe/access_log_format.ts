/**
 * Envoy's substitution format strings (`%REQ(:PATH)%`, `%RESPONSE_CODE%`, ...) compiled once into a list of
 * closures over {@link StreamInfo}, in text and JSON form.
 *
 * @example
 * ```ts
 * const f = compileTextFormat(`%REQ(:METHOD)% %RESPONSE_CODE%\n`, "access_log[0].format");
 * f.format(info); // "GET 200\n"
 * ```
 *
 * @module
 */
import { ConfigError } from "../api/errors.ts";
import type { ResponseFlag, StreamInfo } from "../api/stream_info.ts";
import type { HeaderMap } from "../api/headers.ts";
import { joinPath } from "../config/reader.ts";

/** Envoy's default access log format (used when no format is configured). */
export const DEFAULT_ACCESS_LOG_FORMAT = "[%START_TIME%] " +
  '"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" ' +
  "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% " +
  '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" ' +
  '"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n';

/** One operator's value for a stream: a string, a number, or undefined when not known (`-` / `null`). */
export type FormatValue = string | number | undefined;

/** A compiled operator. */
export type FormatExtractor = (info: StreamInfo) => FormatValue;

/** A compiled format string: literal text and operators in order. */
export type FormatPiece = string | FormatExtractor;

/** Produces one access log line (ending with a newline for JSON; as configured for text). */
export interface AccessLogFormatter {
  format(info: StreamInfo): string;
}

/** Envoy's long response flag names (`%RESPONSE_FLAGS_LONG%`). */
const LONG_FLAGS: Record<ResponseFlag, string> = {
  UH: "NoHealthyUpstream",
  UF: "UpstreamConnectionFailure",
  UO: "UpstreamOverflow",
  NR: "NoRouteFound",
  URX: "UpstreamRetryLimitExceeded",
  NC: "NoClusterFound",
  DT: "DurationTimeout",
  UT: "UpstreamRequestTimeout",
  LR: "LocalReset",
  UR: "UpstreamRemoteReset",
  UC: "UpstreamConnectionTermination",
  DI: "DelayInjected",
  FI: "FaultInjected",
  DC: "DownstreamConnectionTermination",
  DPE: "DownstreamProtocolError",
  UPE: "UpstreamProtocolError",
  SI: "StreamIdleTimeout",
  RL: "RateLimited",
  UAEX: "UnauthorizedExternalService",
  IH: "InvalidEnvoyRequestHeaders",
  DF: "DnsResolutionFailed",
  OM: "OverloadManagerTerminated",
};

/** The response flag short names Ferry knows. */
export const RESPONSE_FLAGS: readonly ResponseFlag[] = Object.keys(LONG_FLAGS) as ResponseFlag[];

// Envoy operators Ferry does not implement: a clearer error than "unknown".
const UNSUPPORTED = new Set([
  "DYNAMIC_METADATA",
  "CLUSTER_METADATA",
  "UPSTREAM_METADATA",
  "FILTER_STATE",
  "UPSTREAM_FILTER_STATE",
  "METADATA",
  "CEL",
  "REQ_HEADER_BYTES",
  "RESP_HEADER_BYTES",
  "GRPC_STATUS",
  "GRPC_STATUS_NUMBER",
  "DOWNSTREAM_PEER_URI_SAN",
  "DOWNSTREAM_LOCAL_URI_SAN",
  "DOWNSTREAM_PEER_CERT",
  "DOWNSTREAM_PEER_FINGERPRINT_256",
  "DOWNSTREAM_PEER_SERIAL",
  "DOWNSTREAM_PEER_ISSUER",
  "UPSTREAM_PEER_SUBJECT",
  "UPSTREAM_TLS_VERSION",
  "UPSTREAM_TLS_CIPHER",
  "UPSTREAM_TLS_SESSION_ID",
  "DOWNSTREAM_TLS_SESSION_ID",
  "VIRTUAL_CLUSTER_NAME",
  "ENVIRONMENT",
  "TRACE_ID",
]);

/** Strips the port from `host:port` / `[v6]:port` (Envoy prints IPv6 without brackets then). */
export function addressWithoutPort(a: string): string {
  if (a.startsWith("[")) {
    const e = a.indexOf("]");
    return e > 0 ? a.slice(1, e) : a;
  }
  const c = a.lastIndexOf(":");
  if (c < 0 || a.indexOf(":") !== c) return a;
  return a.slice(0, c);
}

function portOf(a: string): number | undefined {
  const c = a.lastIndexOf(":");
  if (c < 0 || (!a.startsWith("[") && a.indexOf(":") !== c)) return undefined;
  const n = Number(a.slice(c + 1));
  return Number.isInteger(n) && a.length > c + 1 ? n : undefined;
}

function ms(v: number | undefined): number | undefined {
  return v === undefined ? undefined : Math.floor(v);
}

let hostnameCache: string | undefined;
function hostname(): string {
  if (hostnameCache === undefined) {
    try {
      hostnameCache = Deno.hostname();
    } catch {
      hostnameCache = "-";
    }
  }
  return hostnameCache;
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, "0");
}

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];

type TimePart = string | ((d: Date, ms: number) => string);

/**
 * Compiles the strftime subset Envoy's `%START_TIME(...)%` accepts (in UTC): `%Y %y %m %d %e %H %I %M %S %p %j
 * %a %A %b %B %F %T %D %z %Z %s %n %t %%`, fractional seconds `%f` (9 digits) and `%1f`..`%9f`, and absl's
 * `%E<n>S` (seconds with n fraction digits). Times have millisecond precision; extra digits are zeros.
 */
export function compileTimeFormat(fmt: string, path: string): (ms: number) => string {
  const parts: TimePart[] = [];
  let lit = "";
  const frac = (digits: number) => (_d: Date, t: number) => {
    const msPart = pad(((t % 1000) + 1000) % 1000, 3);
    return digits <= 3 ? msPart.slice(0, digits) : msPart + "0".repeat(digits - 3);
  };
  const push = (p: TimePart) => {
    if (lit) parts.push(lit);
    lit = "";
    parts.push(p);
  };
  for (let i = 0; i < fmt.length; i++) {
    const c = fmt[i]!;
    if (c !== "%") {
      lit += c;
      continue;
    }
    const n = fmt[++i];
    let m: RegExpExecArray | null;
    if (n !== undefined && (m = /^([1-9])f/.exec(fmt.slice(i))) !== null) {
      push(frac(Number(m[1])));
      i += 1;
      continue;
    }
    if (n === "E" && (m = /^E([0-9*])S/.exec(fmt.slice(i))) !== null) {
      const digits = m[1] === "*" ? 3 : Number(m[1]);
      const f = frac(digits);
      push((d, t) => pad(d.getUTCSeconds()) + (digits > 0 ? `.${f(d, t)}` : ""));
      i += 2;
      continue;
    }
    switch (n) {
      case "Y":
        push((d) => String(d.getUTCFullYear()));
        break;
      case "y":
        push((d) => pad(d.getUTCFullYear() % 100));
        break;
      case "m":
        push((d) => pad(d.getUTCMonth() + 1));
        break;
      case "d":
        push((d) => pad(d.getUTCDate()));
        break;
      case "e":
        push((d) => String(d.getUTCDate()).padStart(2, " "));
        break;
      case "H":
        push((d) => pad(d.getUTCHours()));
        break;
      case "I":
        push((d) => pad(d.getUTCHours() % 12 === 0 ? 12 : d.getUTCHours() % 12));
        break;
      case "M":
        push((d) => pad(d.getUTCMinutes()));
        break;
      case "S":
        push((d) => pad(d.getUTCSeconds()));
        break;
      case "p":
        push((d) => d.getUTCHours() < 12 ? "AM" : "PM");
        break;
      case "j": {
        push((d) => pad(Math.floor((d.getTime() - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86400000) + 1, 3));
        break;
      }
      case "a":
        push((d) => DAYS[d.getUTCDay()]!.slice(0, 3));
        break;
      case "A":
        push((d) => DAYS[d.getUTCDay()]!);
        break;
      case "b":
      case "h":
        push((d) => MONTHS[d.getUTCMonth()]!.slice(0, 3));
        break;
      case "B":
        push((d) => MONTHS[d.getUTCMonth()]!);
        break;
      case "F":
        push((d) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`);
        break;
      case "T":
        push((d) => `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`);
        break;
      case "D":
        push((d) => `${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())}/${pad(d.getUTCFullYear() % 100)}`);
        break;
      case "z":
        lit += "+0000";
        break;
      case "Z":
        lit += "UTC";
        break;
      case "s":
        push((_d, t) => String(Math.floor(t / 1000)));
        break;
      case "f":
        push(frac(9));
        break;
      case "n":
        lit += "\n";
        break;
      case "t":
        lit += "\t";
        break;
      case "%":
        lit += "%";
        break;
      default:
        throw new ConfigError(path, `START_TIME format ${JSON.stringify(fmt)}: "%${n ?? ""}" is not supported`);
    }
  }
  if (lit) parts.push(lit);
  return (t: number) => {
    const d = new Date(t);
    let out = "";
    for (const p of parts) out += typeof p === "string" ? p : p(d, t);
    return out;
  };
}

function headerOp(which: "req" | "resp" | "trailer", arg: string | undefined, op: string, path: string) {
  if (arg === undefined || arg === "") throw new ConfigError(path, `operator "${op}" needs a header name`);
  const names = arg.split("?");
  if (names.length > 2 || names.some((n) => n === "")) {
    throw new ConfigError(path, `operator "${op}": "${arg}" is not a header name or "X?Y" alternative`);
  }
  const main = names[0]!.toLowerCase();
  const alt = names[1]?.toLowerCase();
  const pick = which === "req"
    ? (i: StreamInfo) => i.requestHeaders
    : which === "resp"
    ? (i: StreamInfo) => i.responseHeaders
    : (i: StreamInfo) => i.responseTrailers;
  return (info: StreamInfo): FormatValue => {
    const h: HeaderMap | undefined = pick(info);
    if (h === undefined) return undefined;
    const v = h.get(main);
    if (v !== undefined || alt === undefined) return v;
    return h.get(alt);
  };
}

type OpFactory = (arg: string | undefined, op: string, path: string) => FormatExtractor;

function noArg(f: FormatExtractor): OpFactory {
  return (arg, op, path) => {
    if (arg !== undefined) throw new ConfigError(path, `operator "${op}" takes no argument`);
    return f;
  };
}

// Requests that start in the same millisecond share the formatted time (about a third of the default format's cost).
let isoLastMs = NaN;
let isoLast = "";
const isoStart = (i: StreamInfo): string => {
  if (i.startTime !== isoLastMs) {
    isoLast = new Date(i.startTime).toISOString();
    isoLastMs = i.startTime;
  }
  return isoLast;
};

const OPERATORS: Record<string, OpFactory> = {
  START_TIME: (arg, _op, path) => {
    if (arg === undefined || arg === "") return isoStart;
    const f = compileTimeFormat(arg, path);
    return (i) => f(i.startTime);
  },
  REQ: (arg, op, path) => headerOp("req", arg, op, path),
  RESP: (arg, op, path) => headerOp("resp", arg, op, path),
  TRAILER: (arg, op, path) => headerOp("trailer", arg, op, path),
  REQ_WITHOUT_QUERY: (arg, op, path) => {
    const f = headerOp("req", arg, op, path);
    return (i) => {
      const v = f(i);
      if (typeof v !== "string") return v;
      const q = v.indexOf("?");
      return q < 0 ? v : v.slice(0, q);
    };
  },
  PROTOCOL: noArg((i) => i.protocol),
  RESPONSE_CODE: noArg((i) => i.responseCode ?? 0),
  RESPONSE_CODE_DETAILS: noArg((i) => i.responseCodeDetails),
  CONNECTION_TERMINATION_DETAILS: noArg((i) => i.connectionTerminationDetails),
  RESPONSE_FLAGS: noArg((i) => i.responseFlags.length === 0 ? "-" : i.responseFlags.join(",")),
  RESPONSE_FLAGS_LONG: noArg((i) =>
    i.responseFlags.length === 0 ? "-" : i.responseFlags.map((f) => LONG_FLAGS[f] ?? f).join(",")
  ),
  BYTES_RECEIVED: noArg((i) => i.bytesReceived),
  BYTES_SENT: noArg((i) => i.bytesSent),
  DURATION: noArg((i) => ms(i.durationMs)),
  REQUEST_DURATION: noArg((i) => ms(i.requestCompleteMs)),
  RESPONSE_DURATION: noArg((i) => ms(i.firstUpstreamRxMs)),
  RESPONSE_TX_DURATION: noArg((i) =>
    i.durationMs === undefined || i.firstUpstreamRxMs === undefined
      ? undefined
      : Math.floor(i.durationMs - i.firstUpstreamRxMs)
  ),
  UPSTREAM_HOST: noArg((i) => i.upstreamHost),
  UPSTREAM_REMOTE_ADDRESS: noArg((i) => i.upstreamHost),
  UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: noArg((i) =>
    i.upstreamHost === undefined ? undefined : addressWithoutPort(i.upstreamHost)
  ),
  UPSTREAM_CLUSTER: noArg((i) => i.upstreamCluster),
  UPSTREAM_LOCAL_ADDRESS: noArg((i) => i.upstreamLocalAddress),
  UPSTREAM_TRANSPORT_FAILURE_REASON: noArg((i) => i.upstreamTransportFailureReason),
  DOWNSTREAM_REMOTE_ADDRESS: noArg((i) => i.downstreamRemoteAddress),
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: noArg((i) => addressWithoutPort(i.downstreamRemoteAddress)),
  DOWNSTREAM_REMOTE_PORT: noArg((i) => portOf(i.downstreamRemoteAddress)),
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS: noArg((i) => i.downstreamDirectRemoteAddress),
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT: noArg((i) => addressWithoutPort(i.downstreamDirectRemoteAddress)),
  DOWNSTREAM_DIRECT_REMOTE_PORT: noArg((i) => portOf(i.downstreamDirectRemoteAddress)),
  DOWNSTREAM_LOCAL_ADDRESS: noArg((i) => i.downstreamLocalAddress),
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: noArg((i) => addressWithoutPort(i.downstreamLocalAddress)),
  DOWNSTREAM_LOCAL_PORT: noArg((i) => portOf(i.downstreamLocalAddress)),
  ROUTE_NAME: noArg((i) => i.routeName),
  VIRTUAL_HOST_NAME: noArg((i) => i.virtualHostName),
  CONNECTION_ID: noArg((i) => i.connectionId ?? 0),
  UPSTREAM_REQUEST_ATTEMPT_COUNT: noArg((i) => i.attemptCount ?? 0),
  DOWNSTREAM_TLS_VERSION: noArg((i) => i.tls?.version),
  DOWNSTREAM_TLS_CIPHER: noArg((i) => i.tls?.cipher),
  DOWNSTREAM_PEER_SUBJECT: noArg((i) => i.tls?.peerSubject),
  REQUESTED_SERVER_NAME: noArg((i) => i.tls?.sni),
  HOSTNAME: noArg(() => hostname()),
};

/** The operator names Ferry implements. */
export const FORMAT_OPERATORS: readonly string[] = Object.keys(OPERATORS);

const COMMAND = /^%([A-Z0-9_]+)(?:\(([^)]*)\))?(?::([0-9]+))?%/;

function truncating(f: FormatExtractor, max: number): FormatExtractor {
  return (i) => {
    const v = f(i);
    return typeof v === "string" && v.length > max ? v.slice(0, max) : v;
  };
}

/**
 * Compiles a format string into literal pieces and operator closures. Unknown operators and malformed commands
 * are {@link ConfigError}s at `path`.
 */
export function compileFormat(fmt: string, path: string): FormatPiece[] {
  const pieces: FormatPiece[] = [];
  let lit = "";
  let i = 0;
  while (i < fmt.length) {
    const pct = fmt.indexOf("%", i);
    if (pct < 0) {
      lit += fmt.slice(i);
      break;
    }
    lit += fmt.slice(i, pct);
    if (fmt[pct + 1] === "%") {
      lit += "%";
      i = pct + 2;
      continue;
    }
    const m = COMMAND.exec(fmt.slice(pct));
    if (m === null) {
      const end = fmt.indexOf("%", pct + 1);
      const bad = end < 0 ? fmt.slice(pct) : fmt.slice(pct, end + 1);
      throw new ConfigError(path, `malformed command operator ${JSON.stringify(bad)} at position ${pct}`);
    }
    const [whole, op, arg, len] = m as unknown as [string, string, string | undefined, string | undefined];
    const factory = OPERATORS[op];
    if (factory === undefined) {
      if (UNSUPPORTED.has(op)) throw new ConfigError(path, `command operator "${whole}" is not supported`);
      throw new ConfigError(path, `unknown command operator "${whole}"`);
    }
    let f = factory(arg, op, path);
    if (len !== undefined) f = truncating(f, Number(len));
    if (lit) pieces.push(lit);
    lit = "";
    pieces.push(f);
    i = pct + whole.length;
  }
  if (lit) pieces.push(lit);
  return pieces;
}

function renderPieces(pieces: readonly FormatPiece[], info: StreamInfo, missing: string): string {
  let out = "";
  for (let k = 0; k < pieces.length; k++) {
    const p = pieces[k]!;
    if (typeof p === "string") {
      out += p;
      continue;
    }
    const v = p(info);
    out += v === undefined ? missing : v;
  }
  return out;
}

/** Options of a text format (Envoy's `SubstitutionFormatString`). */
export interface TextFormatOptions {
  /** Print an empty string instead of `-` for unknown values. */
  omitEmptyValues?: boolean;
}

/** Compiles a text format; the line is printed exactly (Envoy adds no newline to a custom text format). */
export function compileTextFormat(fmt: string, path: string, opts: TextFormatOptions = {}): AccessLogFormatter {
  const pieces = compileFormat(fmt, path);
  const missing = opts.omitEmptyValues ? "" : "-";
  return { format: (info) => renderPieces(pieces, info, missing) };
}

/** Options of a JSON format. */
export interface JsonFormatOptions {
  /** Leave out keys whose value is unknown or empty. */
  omitEmptyValues?: boolean;
  /** Sort keys (Envoy's `json_format_options.sort_properties`); otherwise config order. */
  sortProperties?: boolean;
  /**
   * Keep operator types (numbers stay numbers). True for `log_format.json_format` and `typed_json_format`;
   * false for the legacy `FileAccessLog.json_format`, which prints every value as a string.
   */
  typed?: boolean;
}

type JsonNode =
  | { kind: "literal"; value: unknown }
  | { kind: "single"; f: FormatExtractor }
  | { kind: "text"; pieces: FormatPiece[] }
  | { kind: "object"; entries: [string, JsonNode][] };

function compileJsonNode(v: unknown, path: string, sort: boolean): JsonNode {
  if (typeof v === "string") {
    const pieces = compileFormat(v, path);
    if (pieces.length === 1 && typeof pieces[0] === "function") return { kind: "single", f: pieces[0] };
    if (pieces.every((p) => typeof p === "string")) return { kind: "literal", value: pieces.join("") };
    return { kind: "text", pieces };
  }
  if (typeof v === "number" || typeof v === "boolean" || v === null) return { kind: "literal", value: v };
  if (typeof v === "object" && !Array.isArray(v)) {
    const keys = Object.keys(v as Record<string, unknown>);
    if (sort) keys.sort();
    return {
      kind: "object",
      entries: keys.map((k) => [k, compileJsonNode((v as Record<string, unknown>)[k], joinPath(path, k), sort)]),
    };
  }
  throw new ConfigError(path, "only strings, numbers, booleans and nested objects are supported in json_format");
}

function isEmpty(v: unknown): boolean {
  return v === undefined || v === null || v === "";
}

function evalJson(n: JsonNode, info: StreamInfo, opts: JsonFormatOptions): unknown {
  switch (n.kind) {
    case "literal":
      return n.value;
    case "single": {
      const v = n.f(info);
      if (v === undefined) return null;
      return opts.typed || typeof v === "string" ? v : String(v);
    }
    case "text":
      return renderPieces(n.pieces, info, "-");
    case "object": {
      const o: Record<string, unknown> = {};
      for (const [k, child] of n.entries) {
        const v = evalJson(child, info, opts);
        if (opts.omitEmptyValues && isEmpty(v)) continue;
        o[k] = v;
      }
      return o;
    }
  }
}

/**
 * Compiles a `json_format` struct: each string value is a format string; a value that is exactly one operator
 * keeps its type (numbers stay numbers), unknown values are `null` (or left out with `omitEmptyValues`). One JSON
 * object per line.
 */
export function compileJsonFormat(
  struct: unknown,
  path: string,
  opts: JsonFormatOptions = {},
): AccessLogFormatter {
  if (struct === null || typeof struct !== "object" || Array.isArray(struct)) {
    throw new ConfigError(path, "expected an object");
  }
  const root = compileJsonNode(struct, path, opts.sortProperties ?? false);
  const o: JsonFormatOptions = { typed: opts.typed ?? true, omitEmptyValues: opts.omitEmptyValues ?? false };
  return { format: (info) => `${JSON.stringify(evalJson(root, info, o))}\n` };
}
