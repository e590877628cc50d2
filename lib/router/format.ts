/**
 * Header value formats: Envoy's substitution operators in `*_headers_to_add` values, compiled once at parse time.
 *
 * Supported operators: `%%`, `%DOWNSTREAM_REMOTE_ADDRESS%`, `%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%`,
 * `%DOWNSTREAM_REMOTE_PORT%`, `%DOWNSTREAM_LOCAL_ADDRESS%`, `%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%`,
 * `%DOWNSTREAM_LOCAL_PORT%`, `%PROTOCOL%`, `%UPSTREAM_REMOTE_ADDRESS%`, `%UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%`,
 * `%UPSTREAM_CLUSTER%`, `%ROUTE_NAME%`, `%HOSTNAME%`, `%START_TIME%` / `%START_TIME(fmt)%` (a strftime subset,
 * UTC), `%REQ(name?alt):N%` and `%RESP(name?alt):N%`. A missing value formats as `""` (Envoy omits empty values in
 * header formats, unlike access logs which print `-`). Anything else is a config error, as in Envoy.
 *
 * @module
 */
import { ConfigError } from "../api/errors.ts";
import type { HeaderMap } from "../api/headers.ts";
import type { FormatContext, HeaderFormatter } from "./types.ts";

/** Which header map a format is evaluated against: `%REQ%` reads the target on the request side. */
export type FormatSide = "request" | "response";

type Part = string | ((ctx: FormatContext, target: HeaderMap) => string);

const OPERATOR = /([A-Z][A-Z0-9_]*)(?:\(([^)]*)\))?(?::(\d+))?%/y;

/** Drops the `:port` of `ip:port` / `[v6]:port`; returns the input when there is no port. */
export function addressWithoutPort(addr: string): string {
  if (addr.charCodeAt(0) === 91 /* [ */) {
    const end = addr.indexOf("]");
    return end < 0 ? addr : addr.slice(1, end);
  }
  const colon = addr.lastIndexOf(":");
  if (colon < 0 || addr.indexOf(":") !== colon) return addr; // bare IPv6 or no port
  return addr.slice(0, colon);
}

function portOf(addr: string): string {
  const colon = addr.lastIndexOf(":");
  if (colon < 0) return "";
  if (addr.charCodeAt(0) !== 91 && addr.indexOf(":") !== colon) return "";
  if (addr.charCodeAt(0) === 91 && addr.charCodeAt(colon - 1) !== 93) return "";
  return addr.slice(colon + 1);
}

function headerOp(
  args: string | undefined,
  maxLen: number | undefined,
  fromTarget: boolean,
  other: "requestHeaders" | "responseHeaders",
  path: string,
  op: string,
): Part {
  if (!args) throw new ConfigError(path, `%${op}(...)% needs a header name`);
  const q = args.indexOf("?");
  const main = (q < 0 ? args : args.slice(0, q)).toLowerCase();
  const alt = q < 0 ? undefined : args.slice(q + 1).toLowerCase();
  if (main === "" || alt === "") throw new ConfigError(path, `%${op}(${args})% has an empty header name`);
  return (ctx, target) => {
    const h = fromTarget ? target : ctx[other];
    if (h === undefined) return "";
    let v = h.get(main);
    if (v === undefined && alt !== undefined) v = h.get(alt);
    if (v === undefined) return "";
    return maxLen !== undefined && v.length > maxLen ? v.slice(0, maxLen) : v;
  };
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/** Compiles a strftime subset (UTC) into a function of epoch milliseconds. */
function compileTimeFormat(fmt: string, path: string): (ms: number) => string {
  const parts: (string | ((d: Date, ms: number) => string))[] = [];
  let lit = "";
  for (let i = 0; i < fmt.length; i++) {
    const c = fmt[i]!;
    if (c !== "%") {
      lit += c;
      continue;
    }
    let d = fmt[++i];
    let width = 0;
    if (d === "E" || (d !== undefined && d >= "0" && d <= "9")) {
      // %E3S (seconds with 3 fraction digits) and %3f (fraction digits), as in Envoy.
      const m = /^E?(\d)([Sf])/.exec(fmt.slice(i));
      if (!m) throw new ConfigError(path, `unsupported time format directive in ${JSON.stringify(fmt)}`);
      width = Number(m[1]);
      d = m[2] === "S" ? "ES" : "f";
      i += m[0].length - 1;
    }
    let f: ((dt: Date, ms: number) => string) | undefined;
    const w = width;
    const frac = (ms: number) => {
      const nanos = Math.round(((ms % 1000) + 1000) % 1000 * 1e6);
      return pad(nanos, 9).slice(0, w || 9);
    };
    switch (d) {
      case "%":
        lit += "%";
        continue;
      case "Y":
        f = (dt) => String(dt.getUTCFullYear());
        break;
      case "y":
        f = (dt) => pad(dt.getUTCFullYear() % 100, 2);
        break;
      case "m":
        f = (dt) => pad(dt.getUTCMonth() + 1, 2);
        break;
      case "d":
        f = (dt) => pad(dt.getUTCDate(), 2);
        break;
      case "e":
        f = (dt) => String(dt.getUTCDate()).padStart(2, " ");
        break;
      case "H":
        f = (dt) => pad(dt.getUTCHours(), 2);
        break;
      case "M":
        f = (dt) => pad(dt.getUTCMinutes(), 2);
        break;
      case "S":
        f = (dt) => pad(dt.getUTCSeconds(), 2);
        break;
      case "ES":
        f = (dt, ms) => w === 0 ? pad(dt.getUTCSeconds(), 2) : `${pad(dt.getUTCSeconds(), 2)}.${frac(ms)}`;
        break;
      case "f":
        f = (_dt, ms) => frac(ms);
        break;
      case "s":
        f = (_dt, ms) => String(Math.floor(ms / 1000));
        break;
      case "T":
        f = (dt) => `${pad(dt.getUTCHours(), 2)}:${pad(dt.getUTCMinutes(), 2)}:${pad(dt.getUTCSeconds(), 2)}`;
        break;
      case "F":
        f = (dt) => `${dt.getUTCFullYear()}-${pad(dt.getUTCMonth() + 1, 2)}-${pad(dt.getUTCDate(), 2)}`;
        break;
      case "z":
        lit += "+0000";
        continue;
      case "Z":
        lit += "UTC";
        continue;
      case "b":
        f = (dt) => MONTHS[dt.getUTCMonth()]!;
        break;
      case "a":
        f = (dt) => DAYS[dt.getUTCDay()]!;
        break;
      case "j":
        f = (dt) => pad(Math.floor((dt.getTime() - Date.UTC(dt.getUTCFullYear(), 0, 1)) / 86400000) + 1, 3);
        break;
      default:
        throw new ConfigError(path, `unsupported time format directive %${d ?? ""} in ${JSON.stringify(fmt)}`);
    }
    if (lit) {
      parts.push(lit);
      lit = "";
    }
    parts.push(f);
  }
  if (lit) parts.push(lit);
  return (ms) => {
    const dt = new Date(ms);
    let out = "";
    for (const p of parts) out += typeof p === "string" ? p : p(dt, ms);
    return out;
  };
}

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "";
  }
}

function operator(
  name: string,
  args: string | undefined,
  maxLen: number | undefined,
  side: FormatSide,
  path: string,
): Part {
  const noArgs = () => {
    if (args !== undefined || maxLen !== undefined) {
      throw new ConfigError(path, `%${name}% takes no arguments`);
    }
  };
  switch (name) {
    case "REQ":
      return headerOp(args, maxLen, side === "request", "requestHeaders", path, name);
    case "RESP":
      return headerOp(args, maxLen, side === "response", "responseHeaders", path, name);
    case "START_TIME": {
      if (maxLen !== undefined) throw new ConfigError(path, `%START_TIME% takes no length`);
      // Envoy's default START_TIME format is ISO 8601 with milliseconds, which is Date#toISOString.
      const f = args ? compileTimeFormat(args, path) : (ms: number) => new Date(ms).toISOString();
      return (ctx) => f(ctx.startTime ?? Date.now());
    }
    case "HOSTNAME": {
      noArgs();
      const h = hostname();
      return () => h;
    }
  }
  noArgs();
  switch (name) {
    case "DOWNSTREAM_REMOTE_ADDRESS":
      return (ctx) => ctx.downstreamRemoteAddress ?? "";
    case "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT":
      return (ctx) => ctx.downstreamRemoteAddress === undefined ? "" : addressWithoutPort(ctx.downstreamRemoteAddress);
    case "DOWNSTREAM_REMOTE_PORT":
      return (ctx) => ctx.downstreamRemoteAddress === undefined ? "" : portOf(ctx.downstreamRemoteAddress);
    case "DOWNSTREAM_LOCAL_ADDRESS":
      return (ctx) => ctx.downstreamLocalAddress ?? "";
    case "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT":
      return (ctx) => ctx.downstreamLocalAddress === undefined ? "" : addressWithoutPort(ctx.downstreamLocalAddress);
    case "DOWNSTREAM_LOCAL_PORT":
      return (ctx) => ctx.downstreamLocalAddress === undefined ? "" : portOf(ctx.downstreamLocalAddress);
    case "PROTOCOL":
      return (ctx) => ctx.protocol ?? "";
    case "UPSTREAM_REMOTE_ADDRESS":
      return (ctx) => ctx.upstreamHost ?? "";
    case "UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT":
      return (ctx) => ctx.upstreamHost === undefined ? "" : addressWithoutPort(ctx.upstreamHost);
    case "UPSTREAM_CLUSTER":
      return (ctx) => ctx.upstreamCluster ?? "";
    case "ROUTE_NAME":
      return (ctx) => ctx.routeName ?? "";
  }
  throw new ConfigError(path, `%${name}% is not a supported substitution operator`);
}

/**
 * Compiles a header value format. Throws a {@link ConfigError} at `path` for an unterminated or unknown
 * operator.
 *
 * @example
 * ```ts
 * const f = compileHeaderFormat("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", "x.value", "request");
 * f.format({ downstreamRemoteAddress: "10.0.0.1:5555" }, headers); // "10.0.0.1"
 * ```
 */
export function compileHeaderFormat(source: string, path: string, side: FormatSide): HeaderFormatter {
  const parts: Part[] = [];
  let lit = "";
  let i = 0;
  while (i < source.length) {
    const pct = source.indexOf("%", i);
    if (pct < 0) {
      lit += source.slice(i);
      break;
    }
    lit += source.slice(i, pct);
    if (source.charCodeAt(pct + 1) === 37 /* % */) {
      lit += "%";
      i = pct + 2;
      continue;
    }
    OPERATOR.lastIndex = pct + 1;
    const m = OPERATOR.exec(source);
    if (!m) {
      throw new ConfigError(
        path,
        `invalid header value format ${JSON.stringify(source)}: unterminated or malformed operator at offset ${pct}` +
          ` (write %% for a literal %)`,
      );
    }
    const maxLen = m[3] === undefined ? undefined : Number(m[3]);
    const part = operator(m[1]!, m[2], maxLen, side, path);
    if (lit) {
      parts.push(lit);
      lit = "";
    }
    parts.push(part);
    i = OPERATOR.lastIndex;
  }
  if (lit) parts.push(lit);
  return makeFormatter(source, parts);
}

function makeFormatter(source: string, parts: Part[]): HeaderFormatter {
  if (parts.every((p) => typeof p === "string")) {
    const constant = (parts as string[]).join("");
    return { source, constant, format: () => constant };
  }
  if (parts.length === 1) {
    const only = parts[0] as (ctx: FormatContext, target: HeaderMap) => string;
    return { source, constant: undefined, format: only };
  }
  return {
    source,
    constant: undefined,
    format(ctx, target) {
      let out = "";
      for (let i = 0; i < parts.length; i++) {
        const p = parts[i]!;
        out += typeof p === "string" ? p : p(ctx, target);
      }
      return out;
    },
  };
}
