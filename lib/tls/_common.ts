/**
 * Helpers shared by the TLS config parsers: Envoy `DataSource`s and string matchers.
 *
 * @module
 */
import { ConfigError } from "../api/errors.ts";
import type { ObjReader } from "../config/reader.ts";

/**
 * Reads an Envoy `DataSource` (`filename`, `inline_string`, `inline_bytes` base64, `environment_variable`) as
 * text. Files are read at parse time so a missing file is a config error naming the path.
 */
export function readDataSource(o: ObjReader): string {
  const which = o.oneOf(["filename", "inline_string", "inline_bytes", "environment_variable"] as const, {
    required: true,
  });
  o.unsupported("watched_directory", "is not supported (certificates are read once at load)");
  let text: string;
  if (which === "filename") {
    const file = o.str("filename", { required: true });
    try {
      text = Deno.readTextFileSync(file);
    } catch (e) {
      throw new ConfigError(o.at("filename"), `cannot read ${JSON.stringify(file)}: ${errorText(e)}`);
    }
  } else if (which === "inline_string") {
    text = o.str("inline_string", { required: true });
  } else if (which === "inline_bytes") {
    const b64 = o.str("inline_bytes", { required: true });
    try {
      text = new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
    } catch {
      throw new ConfigError(o.at("inline_bytes"), "is not valid base64");
    }
  } else {
    const name = o.str("environment_variable", { required: true });
    const v = Deno.env.get(name);
    if (v === undefined) throw new ConfigError(o.at("environment_variable"), `${JSON.stringify(name)} is not set`);
    text = v;
  }
  o.done();
  return text;
}

/** A string matcher (Envoy `type.matcher.v3.StringMatcher`). */
export type StringMatch = (s: string) => boolean;

/** Parses an Envoy `StringMatcher`. */
export function parseStringMatcher(o: ObjReader): StringMatch {
  const which = o.oneOf(["exact", "prefix", "suffix", "contains", "safe_regex"] as const, { required: true })!;
  const ignoreCase = o.bool("ignore_case") ?? false;
  const norm = (s: string) => ignoreCase ? s.toLowerCase() : s;
  let m: StringMatch;
  if (which === "safe_regex") {
    const r = o.obj("safe_regex", { required: true })!;
    const regex = r.str("regex", { required: true });
    r.skip("google_re2");
    r.done();
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${regex})$`, ignoreCase ? "i" : "");
    } catch (e) {
      throw new ConfigError(r.at("regex"), `is not a valid regular expression: ${errorText(e)}`);
    }
    m = (s) => re.test(s);
  } else {
    const want = norm(o.str(which, { required: which === "exact" ? false : true }) ?? "");
    if (which === "exact") m = (s) => norm(s) === want;
    else if (which === "prefix") m = (s) => norm(s).startsWith(want);
    else if (which === "suffix") m = (s) => norm(s).endsWith(want);
    else m = (s) => norm(s).includes(want);
  }
  o.done();
  return m;
}

/** The message of an unknown thrown value. */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
