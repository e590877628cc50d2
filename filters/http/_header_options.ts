/**
 * Envoy's `HeaderValueOption` lists as the filters of this folder read them (`response_headers_to_add`, the
 * header mutation filter's `append`), compiled into the router's {@link HeaderMutation} form so that
 * `applyHeaderMutation` applies them with the route's semantics (formats such as `%REQ(x)%` included).
 *
 * @module
 */
import { ConfigError } from "../../lib/api/errors.ts";
import type { HeaderAddition, HeaderAppendAction, HeaderMutation } from "../../lib/api/route.ts";
import type { ObjReader } from "../../lib/config/reader.ts";
import { compileHeaderFormat, type FormatSide } from "../../lib/router/mod.ts";

const APPEND_ACTIONS = [
  "APPEND_IF_EXISTS_OR_ADD",
  "ADD_IF_ABSENT",
  "OVERWRITE_IF_EXISTS_OR_ADD",
  "OVERWRITE_IF_EXISTS",
] as const;

/** A header name a filter may set or remove: lower-cased, a token, not a pseudo-header nor `host`. */
export function mutableHeaderName(name: string, path: string): string {
  const n = name.toLowerCase();
  if (!/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(n)) throw new ConfigError(path, `invalid header name "${name}"`);
  return n;
}

/** Reads one `HeaderValueOption` (`header: {key, value}`, `append_action` or the legacy `append`). */
export function parseHeaderValueOption(o: ObjReader, side: FormatSide): HeaderAddition {
  const h = o.obj("header", { required: true })!;
  const name = mutableHeaderName(h.str("key", { required: true }), h.at("key"));
  h.unsupported("raw_value", "is not supported; use value");
  const value = h.str("value") ?? "";
  h.done();
  if (/[\r\n\0]/.test(value)) throw new ConfigError(h.at("value"), "must not contain CR, LF or NUL characters");
  const legacy = o.bool("append");
  const action = o.enumOf("append_action", APPEND_ACTIONS);
  if (legacy !== undefined && action !== undefined) {
    throw new ConfigError(o.path, "only one of append, append_action may be set");
  }
  const appendAction: HeaderAppendAction = action ??
    (legacy === false ? "OVERWRITE_IF_EXISTS_OR_ADD" : "APPEND_IF_EXISTS_OR_ADD");
  const keepEmptyValue = o.bool("keep_empty_value") ?? false;
  o.done();
  return { name, value: compileHeaderFormat(value, h.at("value"), side), appendAction, keepEmptyValue };
}

/** The empty mutation. */
export const NO_MUTATION: HeaderMutation = Object.freeze({ add: [], remove: [], empty: true });

/** Reads a repeated `HeaderValueOption` field into a mutation (additions only). */
export function parseHeaderAdditions(o: ObjReader, key: string, side: FormatSide): HeaderMutation {
  const add = o.objs(key, (e) => parseHeaderValueOption(e, side));
  return add.length === 0 ? NO_MUTATION : { add, remove: [], empty: false };
}
