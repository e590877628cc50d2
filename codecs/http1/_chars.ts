/**
 * Byte-class tables and constants shared by the HTTP/1 server and client codecs.
 *
 * The hot loops classify each byte with one table load instead of a chain of comparisons.
 *
 * @module
 */

/** Carriage return. */
export const CR = 13;
/** Line feed. */
export const LF = 10;
/** Space. */
export const SP = 32;
/** Horizontal tab. */
export const HTAB = 9;
/** `:` */
export const COLON = 58;
/** `;` */
export const SEMI = 59;
/** `=` */
export const EQUALS = 61;
/** `"` */
export const DQUOTE = 34;
/** Backslash. */
export const BACKSLASH = 92;

/**
 * RFC 9110 `tchar`: 0 = not a token character, 1 = token character, 3 = upper-case letter (bit 2 marks it, so
 * OR-ing the classes of a name says whether it needs lower-casing).
 */
export const TCHAR: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") t[c.charCodeAt(0)] = 1;
  for (let c = 65; c <= 90; c++) t[c] = 3;
  return t;
})();

/**
 * Field-value (and start-line) characters: 0 = forbidden (CTLs other than HTAB, DEL, and so CR and LF),
 * 1 = VCHAR / SP / HTAB, 2 = obs-text (0x80-0xFF; its presence switches string decoding to latin1).
 */
export const FIELD: Uint8Array = (() => {
  const t = new Uint8Array(256);
  t[HTAB] = 1;
  for (let c = 0x20; c < 0x7f; c++) t[c] = 1;
  for (let c = 0x80; c < 0x100; c++) t[c] = 2;
  return t;
})();

/**
 * Characters allowed in an authority (`Host`, or the authority of an absolute-form target): RFC 3986 unreserved,
 * sub-delims, `%` (pct-encoding), `:` and `[` `]` (IP literals). The same set nghttp2 (and so Envoy) accepts.
 */
export const AUTHORITY: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=%:[]") {
    t[c.charCodeAt(0)] = 1;
  }
  return t;
})();

/** True if every character of `s` is allowed in an authority. */
export function validAuthority(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 255 || AUTHORITY[c] === 0) return false;
  }
  return true;
}

/** Hex digit values; 255 for bytes that are not hex digits. */
export const HEX: Uint8Array = (() => {
  const t = new Uint8Array(256).fill(255);
  for (let i = 0; i < 10; i++) t[48 + i] = i;
  for (let i = 0; i < 6; i++) {
    t[65 + i] = 10 + i;
    t[97 + i] = 10 + i;
  }
  return t;
})();

const REASONS: Record<number, string> = {
  100: "Continue",
  101: "Switching Protocols",
  102: "Processing",
  103: "Early Hints",
  200: "OK",
  201: "Created",
  202: "Accepted",
  203: "Non-Authoritative Information",
  204: "No Content",
  205: "Reset Content",
  206: "Partial Content",
  207: "Multi-Status",
  300: "Multiple Choices",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  411: "Length Required",
  412: "Precondition Failed",
  413: "Payload Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  417: "Expectation Failed",
  421: "Misdirected Request",
  422: "Unprocessable Entity",
  425: "Too Early",
  426: "Upgrade Required",
  428: "Precondition Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  451: "Unavailable For Legal Reasons",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
  507: "Insufficient Storage",
  511: "Network Authentication Required",
};

/** Precomputed `HTTP/1.1 <code> <reason>\r\n` lines, indexed by status code. */
const STATUS_LINES: string[] = [];
for (let c = 100; c < 600; c++) STATUS_LINES[c] = `HTTP/1.1 ${c} ${REASONS[c] ?? "Unknown"}\r\n`;

/** The reason phrase of `code` ("Unknown" when it has none). */
export function reasonPhrase(code: number): string {
  return REASONS[code] ?? "Unknown";
}

/** The `HTTP/1.1 <code> <reason>\r\n` status line for a code in 100..599. */
export function statusLine(code: number): string {
  return STATUS_LINES[code] ?? `HTTP/1.1 ${code} Unknown\r\n`;
}

/**
 * True if the comma-separated list `value` contains `token` (lower-case), compared case-insensitively, as for
 * `Connection: keep-alive, Upgrade`.
 */
export function hasToken(value: string, token: string): boolean {
  if (value === token) return true;
  const v = value.toLowerCase();
  if (v === token) return true;
  if (v.indexOf(",") < 0) return v.trim() === token;
  const parts = v.split(",");
  for (let i = 0; i < parts.length; i++) if (parts[i]!.trim() === token) return true;
  return false;
}

/**
 * Common field names, lower-case, grouped by length. The decoder returns these constant (internalized) strings
 * for matching names instead of slicing and lower-casing a new string per field.
 */
export const KNOWN_NAMES: readonly (readonly string[] | undefined)[] = (() => {
  const names = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "user-agent",
    "accept",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "cookie",
    "set-cookie",
    "content-type",
    "content-encoding",
    "content-range",
    "cache-control",
    "pragma",
    "referer",
    "origin",
    "authorization",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-request-id",
    "x-real-ip",
    "date",
    "server",
    "expires",
    "last-modified",
    "etag",
    "vary",
    "location",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "expect",
    "range",
    "if-none-match",
    "if-modified-since",
    "age",
    "via",
    "dnt",
    "upgrade-insecure-requests",
    "sec-fetch-site",
    "sec-fetch-mode",
    "sec-fetch-dest",
    "sec-fetch-user",
    "sec-ch-ua",
    "sec-ch-ua-mobile",
    "sec-ch-ua-platform",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "access-control-allow-origin",
    "strict-transport-security",
    "x-content-type-options",
    "x-frame-options",
    "alt-svc",
    "grpc-status",
    "grpc-message",
    "grpc-timeout",
    "grpc-encoding",
    "grpc-accept-encoding",
    "x-envoy-upstream-service-time",
    "traceparent",
    "tracestate",
    "b3",
  ];
  const t: string[][] = [];
  for (const n of names) (t[n.length] ??= []).push(n);
  return t;
})();

/**
 * Returns the known lower-case name equal (ASCII case-insensitively) to the token `buf[start, start+len)`, or
 * undefined. OR-ing 0x20 folds letters; the other token characters never fold onto `[a-z0-9-]`, the only
 * characters of the known names, so no false match is possible.
 */
export function knownName(buf: Uint8Array, start: number, len: number): string | undefined {
  const cands = KNOWN_NAMES[len];
  if (cands === undefined) return undefined;
  const first = buf[start]! | 0x20;
  outer: for (let c = 0; c < cands.length; c++) {
    const name = cands[c]!;
    if (name.charCodeAt(0) !== first) continue;
    for (let k = 1; k < len; k++) if ((buf[start + k]! | 0x20) !== name.charCodeAt(k)) continue outer;
    return name;
  }
  return undefined;
}

const METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"];

/** Returns the constant string for a standard method spelled exactly (methods are case-sensitive), or undefined. */
export function knownMethod(buf: Uint8Array, start: number, len: number): string | undefined {
  outer: for (let m = 0; m < METHODS.length; m++) {
    const name = METHODS[m]!;
    if (name.length !== len) continue;
    for (let k = 0; k < len; k++) if (buf[start + k] !== name.charCodeAt(k)) continue outer;
    return name;
  }
  return undefined;
}
