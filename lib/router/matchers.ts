/**
 * Envoy's matcher messages — `RegexMatcher`, `StringMatcher`, `HeaderMatcher`, `QueryParameterMatcher`,
 * `RegexMatchAndSubstitute` — parsed strictly and compiled for the request path. Other filters (RBAC, access-log
 * filters) can reuse these parsers.
 *
 * Envoy's regexes are RE2; Ferry compiles them as JavaScript `RegExp`s, anchored for full matches. The common RE2
 * syntax is the same; `(?P<name>...)` and a leading `(?i)` are translated; lookaround and backreferences (which
 * RE2 rejects) are rejected too, so a config valid here is valid in Envoy.
 *
 * @module
 */
import { ConfigError } from "../api/errors.ts";
import type { HeaderMap } from "../api/headers.ts";
import { describe, ObjReader } from "../config/reader.ts";
import type { HeaderMatcher, QueryParameterMatcher, RegexRewrite, ValueMatcher } from "./types.ts";

/** Translates an RE2 pattern into a JavaScript RegExp (`anchored` = must match the whole input). */
export function compileRe2(source: string, path: string, opts: { anchored?: boolean; global?: boolean } = {}): RegExp {
  let src = source;
  let flags = opts.global ? "g" : "";
  if (src.startsWith("(?i)")) {
    src = src.slice(4);
    flags += "i";
  }
  src = src.replace(/\(\?P</g, "(?<");
  if (/\(\?<?[=!]/.test(src)) {
    throw new ConfigError(path, `invalid regex ${JSON.stringify(source)}: lookaround is not supported (RE2)`);
  }
  if (/(^|[^\\])(\\\\)*\\[1-9]/.test(src)) {
    throw new ConfigError(path, `invalid regex ${JSON.stringify(source)}: backreferences are not supported (RE2)`);
  }
  try {
    return new RegExp(opts.anchored ? `^(?:${src})$` : src, flags);
  } catch (e) {
    // V8 quotes our anchored wrapper; keep only the reason.
    const why = (e instanceof Error ? e.message : String(e)).replace(
      /^Invalid regular expression: \/.*\/[a-z]*: /s,
      "",
    );
    throw new ConfigError(path, `invalid regex ${JSON.stringify(source)}: ${why}`);
  }
}

/** Reads a `RegexMatcher` (`{regex}`, optional legacy `google_re2`) and returns its source. */
export function readRegexMatcher(raw: unknown, path: string): string {
  const o = new ObjReader(raw, path);
  const g = o.obj("google_re2");
  if (g) {
    g.skip("max_program_size");
    g.done();
  }
  const regex = o.str("regex", { required: true });
  o.done();
  return regex;
}

/** Parses a `RegexMatcher` into an anchored (full-match) RegExp. */
export function parseRegexMatcher(raw: unknown, path: string): RegExp {
  const src = readRegexMatcher(raw, path);
  return compileRe2(src, joinAt(path, "regex"), { anchored: true });
}

function joinAt(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function stringMatcher(
  kind: ValueMatcher["kind"],
  value: string,
  ignoreCase: boolean,
  regex?: RegExp,
): ValueMatcher {
  let test: (v: string) => boolean;
  const lv = value.toLowerCase();
  switch (kind) {
    case "exact":
      test = ignoreCase ? (v) => v.length === lv.length && v.toLowerCase() === lv : (v) => v === value;
      break;
    case "prefix":
      test = ignoreCase
        ? (v) => v.length >= lv.length && v.slice(0, lv.length).toLowerCase() === lv
        : (v) => v.startsWith(value);
      break;
    case "suffix":
      test = ignoreCase
        ? (v) => v.length >= lv.length && v.slice(v.length - lv.length).toLowerCase() === lv
        : (v) => v.endsWith(value);
      break;
    case "contains":
      test = ignoreCase ? (v) => v.toLowerCase().includes(lv) : (v) => v.includes(value);
      break;
    default: {
      const re = regex!;
      test = (v) => re.test(v);
    }
  }
  return { kind, value, ignoreCase, test };
}

/**
 * Parses a `StringMatcher` (`exact`, `prefix`, `suffix`, `contains`, `safe_regex`, `ignore_case`). `ignore_case`
 * has no effect on `safe_regex`, as in Envoy.
 */
export function parseStringMatcher(raw: unknown, path: string): ValueMatcher {
  const o = new ObjReader(raw, path);
  o.unsupported("custom", "custom string matchers are not supported");
  const which = o.oneOf(["exact", "prefix", "suffix", "contains", "safe_regex"] as const, { required: true })!;
  const ignoreCase = o.bool("ignore_case") ?? false;
  let m: ValueMatcher;
  if (which === "safe_regex") {
    const re = parseRegexMatcher(o.value("safe_regex"), o.at("safe_regex"));
    m = stringMatcher("safe_regex", re.source, false, re);
  } else {
    const v = o.str(which)!;
    if (which !== "exact" && v === "") throw new ConfigError(o.at(which), "must not be empty");
    m = stringMatcher(which, v, ignoreCase);
  }
  o.done();
  return m;
}

function parseRange(raw: unknown, path: string): ValueMatcher {
  const o = new ObjReader(raw, path);
  const start = o.int("start") ?? 0;
  const end = o.int("end") ?? 0;
  o.done();
  if (end <= start) throw new ConfigError(path, `end ${end} must be greater than start ${start}`);
  return {
    kind: "range",
    value: `${start},${end}`,
    ignoreCase: false,
    test(v) {
      if (!/^-?\d+$/.test(v)) return false;
      const n = Number(v);
      return n >= start && n < end;
    },
  };
}

/** True if `name` is a syntactically valid (lower- or upper-case) HTTP header name, pseudo-headers included. */
export function isHeaderName(name: string): boolean {
  return /^:?[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name);
}

/**
 * Parses a `HeaderMatcher`: `name` with one of `string_match`, the legacy `exact_match`, `prefix_match`,
 * `suffix_match`, `contains_match`, `safe_regex_match`, `range_match`, `present_match` (none = presence), plus
 * `invert_match` and `treat_missing_header_as_empty`.
 */
export function parseHeaderMatcher(raw: unknown, path: string): HeaderMatcher {
  const o = new ObjReader(raw, path);
  const name = o.str("name", { required: true });
  if (!isHeaderName(name)) throw new ConfigError(o.at("name"), `${describe(name)} is not a valid header name`);
  const invert = o.bool("invert_match") ?? false;
  const treatMissingAsEmpty = o.bool("treat_missing_header_as_empty") ?? false;
  const which = o.oneOf(
    [
      "string_match",
      "exact_match",
      "prefix_match",
      "suffix_match",
      "contains_match",
      "safe_regex_match",
      "range_match",
      "present_match",
    ] as const,
  );
  let present: boolean | undefined;
  let matcher: ValueMatcher | undefined;
  switch (which) {
    case undefined:
      present = true;
      break;
    case "present_match":
      present = o.bool("present_match")!;
      break;
    case "string_match":
      matcher = parseStringMatcher(o.value(which), o.at(which));
      break;
    case "safe_regex_match": {
      const re = parseRegexMatcher(o.value(which), o.at(which));
      matcher = stringMatcher("safe_regex", re.source, false, re);
      break;
    }
    case "range_match":
      matcher = parseRange(o.value(which), o.at(which));
      break;
    default: {
      const v = o.str(which)!;
      const kind = which.slice(0, which.indexOf("_")) as "exact" | "prefix" | "suffix" | "contains";
      if (kind !== "exact" && v === "") throw new ConfigError(o.at(which), "must not be empty");
      matcher = stringMatcher(kind, v, false);
    }
  }
  o.done();
  return { name: name.toLowerCase(), invert, treatMissingAsEmpty, present, matcher };
}

/**
 * Evaluates one header matcher against a header map, with Envoy's rules: repeated headers are joined with `,`;
 * a missing header fails a value matcher whether inverted or not, unless `treat_missing_header_as_empty`; a
 * presence matcher is inverted like any other.
 */
export function matchHeader(m: HeaderMatcher, headers: HeaderMap): boolean {
  if (m.present !== undefined) return (headers.has(m.name) === m.present) !== m.invert;
  let v = headers.getJoined(m.name);
  if (v === undefined) {
    if (!m.treatMissingAsEmpty) return false;
    v = "";
  }
  return m.matcher!.test(v) !== m.invert;
}

/** True if every matcher matches (an empty list matches). */
export function matchHeaders(ms: readonly HeaderMatcher[], headers: HeaderMap): boolean {
  for (let i = 0; i < ms.length; i++) if (!matchHeader(ms[i]!, headers)) return false;
  return true;
}

/** Parses a `QueryParameterMatcher` (`name` with `string_match` or `present_match: true`). */
export function parseQueryParameterMatcher(raw: unknown, path: string): QueryParameterMatcher {
  const o = new ObjReader(raw, path);
  const name = o.str("name", { required: true });
  const which = o.oneOf(["string_match", "present_match"] as const);
  let matcher: ValueMatcher | undefined;
  if (which === "string_match") {
    matcher = parseStringMatcher(o.value(which), o.at(which));
  } else if (which === "present_match" && o.bool("present_match") === false) {
    // Envoy treats `present_match: false` as a presence check; rejecting it avoids a silent surprise.
    throw new ConfigError(o.at("present_match"), "false is not supported (Envoy would treat it as true)");
  }
  o.done();
  return { name, matcher };
}

function decode(s: string): string {
  if (s.indexOf("%") < 0) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Parses the query string of a `:path` (the part after `?`, up to `#`) into a map of first values, percent-decoded
 * as Envoy's `parseAndDecodeQueryString`. A parameter without `=` has the value `""`.
 */
export function parseQuery(path: string): Map<string, string> {
  const out = new Map<string, string>();
  const q = path.indexOf("?");
  if (q < 0) return out;
  let end = path.indexOf("#", q);
  if (end < 0) end = path.length;
  let i = q + 1;
  while (i <= end) {
    let amp = path.indexOf("&", i);
    if (amp < 0 || amp > end) amp = end;
    if (amp > i) {
      const eq = path.indexOf("=", i);
      const k = eq >= 0 && eq < amp ? path.slice(i, eq) : path.slice(i, amp);
      const v = eq >= 0 && eq < amp ? path.slice(eq + 1, amp) : "";
      const key = decode(k);
      if (!out.has(key)) out.set(key, decode(v));
    }
    i = amp + 1;
  }
  return out;
}

/** True if every query parameter matcher matches the parsed query. */
export function matchQueryParameters(ms: readonly QueryParameterMatcher[], query: Map<string, string>): boolean {
  for (let i = 0; i < ms.length; i++) {
    const m = ms[i]!;
    const v = query.get(m.name);
    if (v === undefined) return false;
    if (m.matcher !== undefined && !m.matcher.test(v)) return false;
  }
  return true;
}

/** True for gRPC content types: `application/grpc`, `application/grpc+proto`, `application/grpc;...`. */
export function isGrpcContentType(ct: string | undefined): boolean {
  if (ct === undefined || !ct.startsWith("application/grpc")) return false;
  if (ct.length === 16) return true;
  const c = ct.charCodeAt(16);
  return c === 43 /* + */ || c === 59 /* ; */;
}

/**
 * Compiles an RE2 rewrite: `pattern` replaced (globally) by `substitution`, where `\0`–`\9` name capture groups
 * and `\\` is a backslash. Errors (bad regex, a reference to a group the pattern lacks, a stray backslash) name
 * `path`, as Envoy rejects them at load time.
 */
export function compileRegexRewrite(pattern: string, substitution: string, path: string): RegexRewrite {
  const re = compileRe2(pattern, joinAt(path, "pattern.regex"), { global: true });
  const groups = new RegExp(`${re.source}|`).exec("")!.length - 1;
  const parts: (string | number)[] = [];
  let lit = "";
  for (let i = 0; i < substitution.length; i++) {
    const c = substitution[i]!;
    if (c !== "\\") {
      lit += c;
      continue;
    }
    const d = substitution[++i];
    if (d === "\\") {
      lit += "\\";
    } else if (d !== undefined && d >= "0" && d <= "9") {
      const n = Number(d);
      if (n > groups) {
        throw new ConfigError(
          joinAt(path, "substitution"),
          `${JSON.stringify(substitution)} refers to group \\${n} but the pattern has ${groups}`,
        );
      }
      if (lit) {
        parts.push(lit);
        lit = "";
      }
      parts.push(n);
    } else {
      throw new ConfigError(joinAt(path, "substitution"), `invalid rewrite ${JSON.stringify(substitution)}`);
    }
  }
  if (lit) parts.push(lit);
  // RE2's GlobalReplace skips an empty match right where the previous match ended ("/a" with `.*` → one
  // replacement, where JavaScript would make two); replicate it.
  const apply = (input: string) => {
    let lastEnd = -1;
    return input.replace(re, (...args: unknown[]) => {
      const match = args[0] as string;
      const offset = args[groups + 1] as number;
      if (match === "" && offset === lastEnd) return "";
      lastEnd = offset + match.length;
      let out = "";
      for (const p of parts) out += typeof p === "string" ? p : (args[p] as string | undefined) ?? "";
      return out;
    });
  };
  return { pattern, substitution, apply };
}

/** Parses a `RegexMatchAndSubstitute` (`{pattern: {regex}, substitution}`). */
export function parseRegexRewrite(raw: unknown, path: string): RegexRewrite {
  const o = new ObjReader(raw, path);
  const pattern = readRegexMatcher(o.value("pattern", { required: true }), o.at("pattern"));
  const substitution = o.str("substitution") ?? "";
  o.done();
  return compileRegexRewrite(pattern, substitution, path);
}
