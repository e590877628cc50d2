/**
 * HTTP/2 message mapping and validation (RFC 9113 §8.2, §8.3): header lists from the wire become Ferry's
 * {@link HeaderMap} model (and back), and malformed messages are found here.
 *
 * Decoders return the mapped flat list, or a string naming why the message is malformed (a stream error
 * PROTOCOL_ERROR for the caller). The request's `content-length` (or -1) is left in {@link lastContentLength}:
 * a module-level slot instead of a result object, as this runs once per message on the hot path.
 *
 * @module
 */
import { HeaderMap } from "../../lib/api/headers.ts";

/** Valid octets of a field name on HTTP/2: lower-case tchar (RFC 9110 §5.6.2, RFC 9113 §8.2.1). */
const NAME_CHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") NAME_CHAR[c.charCodeAt(0)] = 1;

/** The content-length of the message last decoded (-1: none). */
export let lastContentLength = -1;
/** The `:protocol` of the request last decoded (an extended CONNECT, RFC 8441), or undefined. */
export let lastRequestProtocol: string | undefined;

/** Connection-specific fields (RFC 9113 §8.2.2), not allowed in HTTP/2 and dropped when translating to it. */
export function isConnectionSpecific(name: string): boolean {
  switch (name) {
    case "connection":
    case "keep-alive":
    case "proxy-connection":
    case "transfer-encoding":
    case "upgrade":
      return true;
  }
  return false;
}

/** True if `name` (from offset `from`) is a valid lower-case field name. */
function validName(name: string, from: number): boolean {
  const n = name.length;
  if (n <= from) return false;
  for (let i = from; i < n; i++) {
    const c = name.charCodeAt(i);
    if (c > 255 || NAME_CHAR[c] === 0) return false;
  }
  return true;
}

/** RFC 9113 §8.2.1: no NUL, CR or LF, and no leading or trailing SP/HTAB. */
function validValue(v: string): boolean {
  const n = v.length;
  if (n === 0) return true;
  let c = v.charCodeAt(0);
  if (c === 32 || c === 9) return false;
  c = v.charCodeAt(n - 1);
  if (c === 32 || c === 9) return false;
  for (let i = 0; i < n; i++) {
    c = v.charCodeAt(i);
    if (c <= 13 && (c === 0 || c === 10 || c === 13)) return false;
  }
  return true;
}

/** Parses a content-length value; -2 if invalid. */
function parseLength(v: string): number {
  const n = v.length;
  if (n === 0 || n > 15) return -2;
  let x = 0;
  for (let i = 0; i < n; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -2;
    x = x * 10 + d;
  }
  return x;
}

/**
 * Checks the regular fields of `wire` from index `i` and appends them to `out`: names valid and lower-case, no
 * pseudo-header, no connection-specific field, `te` only `trailers`, consistent `content-length`, cookies joined
 * with `; `. With `hostSlot` ≥ 0, a `host` field fills `out[hostSlot]` if it is still undefined and is dropped.
 * Returns an error text or undefined.
 */
function fields(wire: readonly string[], i: number, out: string[], hostSlot: number): string | undefined {
  let cookie = -1;
  let cl = -1;
  for (; i < wire.length; i += 2) {
    const name = wire[i]!;
    const value = wire[i + 1]!;
    if (name.charCodeAt(0) === 58) return "pseudo-header after a regular field";
    if (!validName(name, 0)) return `invalid field name "${name}"`;
    if (!validValue(value)) return `invalid value of field "${name}"`;
    switch (name) {
      case "connection":
      case "keep-alive":
      case "proxy-connection":
      case "transfer-encoding":
      case "upgrade":
        return `connection-specific field "${name}"`;
      case "te":
        if (value !== "trailers") return `te other than "trailers"`;
        break;
      case "host":
        if (hostSlot >= 0) {
          if (out[hostSlot] === undefined) out[hostSlot] = value;
          continue;
        }
        break;
      case "content-length": {
        const v = parseLength(value);
        if (v < 0 || (cl >= 0 && v !== cl)) return "invalid content-length";
        if (cl >= 0) continue;
        cl = v;
        break;
      }
      case "cookie":
        if (cookie >= 0) {
          out[cookie] = `${out[cookie]!}; ${value}`;
          continue;
        }
        cookie = out.length + 1;
        break;
    }
    out.push(name, value);
  }
  lastContentLength = cl;
  return undefined;
}

/**
 * Maps a request's header list to Ferry's model: `[":method", m, ":path", p, ":authority", a, ":scheme", s,
 * (":protocol", x,) ...fields]` as the HTTP/1 codec does (`host` becomes `:authority` when that is absent and is
 * not repeated; for a plain CONNECT, `:path` is the authority). Returns the list, or a string naming the defect.
 */
export function decodeRequest(wire: readonly string[], scheme: string, allowConnect: boolean): string[] | string {
  let method: string | undefined;
  let path: string | undefined;
  let authority: string | undefined;
  let sch: string | undefined;
  let protocol: string | undefined;
  let i = 0;
  for (; i < wire.length; i += 2) {
    const name = wire[i]!;
    if (name.charCodeAt(0) !== 58) break;
    const value = wire[i + 1]!;
    switch (name) {
      case ":method":
        if (method !== undefined) return "duplicate :method";
        method = value;
        break;
      case ":path":
        if (path !== undefined) return "duplicate :path";
        path = value;
        break;
      case ":authority":
        if (authority !== undefined) return "duplicate :authority";
        authority = value;
        break;
      case ":scheme":
        if (sch !== undefined) return "duplicate :scheme";
        sch = value;
        break;
      case ":protocol":
        if (protocol !== undefined) return "duplicate :protocol";
        protocol = value;
        break;
      default:
        return `unknown pseudo-header "${name}"`;
    }
    if (!validValue(value) || value.length === 0) return `invalid ${name}`;
  }
  if (method === undefined) return "missing :method";
  for (let k = 0; k < method.length; k++) {
    const c = method.charCodeAt(k);
    // tchar, upper case allowed
    if (c > 255 || (NAME_CHAR[c] === 0 && !(c >= 65 && c <= 90))) return "invalid :method";
  }
  const isConnect = method === "CONNECT";
  if (protocol !== undefined) {
    if (!allowConnect) return ":protocol without extended CONNECT enabled";
    if (!isConnect) return ":protocol on a method other than CONNECT";
    if (path === undefined || sch === undefined || authority === undefined) return "incomplete extended CONNECT";
  } else if (isConnect) {
    if (!allowConnect) return "CONNECT not allowed";
    if (path !== undefined || sch !== undefined) return "CONNECT with :path or :scheme";
    if (authority === undefined) return "CONNECT without :authority";
    path = authority;
  } else {
    if (path === undefined) return "missing :path";
    if (sch === undefined) return "missing :scheme";
    const c = path.charCodeAt(0);
    if (c !== 47 && !(path === "*" && method === "OPTIONS")) {
      if (sch === "http" || sch === "https") return "invalid :path";
    }
  }
  const out: string[] = [":method", method, ":path", path!, ":authority", authority!, ":scheme", sch ?? scheme];
  if (protocol !== undefined) out.push(":protocol", protocol);
  lastRequestProtocol = protocol;
  const err = fields(wire, i, out, authority === undefined ? 5 : -1);
  if (err !== undefined) return err;
  if (out[5] === undefined) out.splice(4, 2);
  return out;
}

/** Maps a response's header list: `[":status", s, ...fields]`; a string names the defect. */
export function decodeResponse(wire: readonly string[]): string[] | string {
  let status: string | undefined;
  let i = 0;
  for (; i < wire.length; i += 2) {
    const name = wire[i]!;
    if (name.charCodeAt(0) !== 58) break;
    if (name !== ":status") return `unknown pseudo-header "${name}"`;
    if (status !== undefined) return "duplicate :status";
    status = wire[i + 1]!;
  }
  if (status === undefined) return "missing :status";
  if (status.length !== 3 || parseLength(status) < 100 || parseLength(status) > 599) return "invalid :status";
  const out: string[] = [":status", status];
  const err = fields(wire, i, out, -1);
  if (err !== undefined) return err;
  return out;
}

/** Maps trailers: regular fields only; a string names the defect. */
export function decodeTrailers(wire: readonly string[]): string[] | string {
  const out: string[] = [];
  const err = fields(wire, 0, out, -1);
  if (err !== undefined) return err;
  return out;
}

/** Appends `headers`' regular fields to `out`, dropping connection-specific ones and those `connection` names. */
function encodeFields(kv: readonly string[], out: string[], dropHost: boolean): void {
  let named: string[] | undefined;
  for (let i = 0; i < kv.length; i += 2) {
    if (kv[i] === "connection") {
      for (const t of kv[i + 1]!.split(",")) {
        const n = t.trim().toLowerCase();
        if (n !== "") (named ??= []).push(n);
      }
    }
  }
  for (let i = 0; i < kv.length; i += 2) {
    const name = kv[i]!;
    if (name.charCodeAt(0) === 58) continue;
    switch (name) {
      case "connection":
      case "keep-alive":
      case "proxy-connection":
      case "transfer-encoding":
      case "upgrade":
        continue;
      case "host":
        if (dropHost) continue;
        break;
      case "te":
        if (kv[i + 1] !== "trailers") continue;
        break;
    }
    if (named !== undefined && named.includes(name)) continue;
    out.push(name, kv[i + 1]!);
  }
}

/** The wire list of a response: `:status` (500 if missing or invalid) then the fields fit for HTTP/2. */
export function encodeResponse(headers: HeaderMap): string[] {
  const kv = headers.kv;
  let status = "500";
  for (let i = 0; i < kv.length; i += 2) {
    if (kv[i] === ":status") {
      const s = kv[i + 1]!;
      const v = parseLength(s);
      if (s.length === 3 && v >= 100 && v <= 599) status = s;
      break;
    }
  }
  const out = [":status", status];
  encodeFields(kv, out, false);
  return out;
}

/** Facts of the request last encoded by {@link encodeRequest}. */
export let lastRequestMethod = "GET";

/**
 * The wire list of a request: `:method`, `:scheme`, `:authority` (from `:authority`, else `host`), `:path`, then
 * the fields fit for HTTP/2 (`host` dropped). A plain CONNECT carries `:method` and `:authority` only.
 */
export function encodeRequest(headers: HeaderMap, defaultScheme: string): string[] {
  const kv = headers.kv;
  let method = "GET";
  let path: string | undefined;
  let authority: string | undefined;
  let scheme: string | undefined;
  let protocol: string | undefined;
  let host: string | undefined;
  for (let i = 0; i < kv.length; i += 2) {
    const name = kv[i]!;
    if (name.charCodeAt(0) !== 58) {
      if (name === "host" && host === undefined) host = kv[i + 1]!;
      continue;
    }
    if (name === ":method") method = kv[i + 1]!;
    else if (name === ":path") path = kv[i + 1]!;
    else if (name === ":authority") authority = kv[i + 1]!;
    else if (name === ":scheme") scheme = kv[i + 1]!;
    else if (name === ":protocol") protocol = kv[i + 1]!;
  }
  if (authority === undefined || authority === "") authority = host;
  lastRequestMethod = method;
  let out: string[];
  if (method === "CONNECT" && protocol === undefined) {
    out = [":method", method, ":authority", authority ?? path ?? ""];
  } else {
    out = [":method", method, ":scheme", scheme ?? defaultScheme];
    if (authority !== undefined) out.push(":authority", authority);
    out.push(":path", path ?? "/");
    if (protocol !== undefined) out.push(":protocol", protocol);
  }
  encodeFields(kv, out, true);
  return out;
}

/** The wire list of trailers: the fields fit for HTTP/2. */
export function encodeTrailers(headers: HeaderMap): string[] {
  const out: string[] = [];
  encodeFields(headers.kv, out, false);
  return out;
}

/**
 * The extended CONNECT form of an HTTP/1.1 upgrade request (Envoy's transformUpgradeRequestFromH1toH2): `:method`
 * CONNECT, `:protocol` the upgrade, no `upgrade`/`connection`, and no `content-length: 0`.
 */
export function h2Upgrade(headers: HeaderMap, protocol: string): HeaderMap {
  const kv = headers.kv;
  const out: string[] = [];
  for (let i = 0; i < kv.length; i += 2) {
    const name = kv[i]!;
    if (name === "upgrade" || name === "connection" || name === ":protocol") continue;
    if (name === "content-length" && kv[i + 1] === "0") continue;
    out.push(name, name === ":method" ? "CONNECT" : kv[i + 1]!);
  }
  out.push(":protocol", protocol);
  return new HeaderMap(out);
}

/**
 * The HTTP/1.1 upgrade form of a decoded extended CONNECT request (Envoy's transformUpgradeRequestFromH2toH1):
 * `:method` GET, no `:protocol`, `upgrade: <protocol>` and `connection: upgrade`.
 */
export function h1Upgrade(req: readonly string[], protocol: string): HeaderMap {
  const out: string[] = [];
  for (let i = 0; i < req.length; i += 2) {
    const name = req[i]!;
    if (name === ":protocol") continue;
    out.push(name, name === ":method" ? "GET" : req[i + 1]!);
  }
  out.push("upgrade", protocol, "connection", "upgrade");
  return new HeaderMap(out);
}
