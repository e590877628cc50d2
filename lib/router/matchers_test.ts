import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { compileRe2, compileRegexRewrite, isGrpcContentType, parseQuery, parseStringMatcher } from "./matchers.ts";
import { assertConfigError } from "../../tests/helpers/router.ts";

Deno.test("compileRe2 anchors and translates RE2 syntax", () => {
  const re = compileRe2("(?i)/(?P<id>[a-z]+)", "p", { anchored: true });
  assert(re.test("/ABC") && !re.test("/abc/"));
  assertEquals(re.exec("/xy")?.groups?.id, "xy");
  assertConfigError(
    () => compileRe2("(a)\\1", "p"),
    'config: p: invalid regex "(a)\\\\1": backreferences are not supported (RE2)',
  );
  assertConfigError(
    () => compileRe2("(?<!a)b", "p"),
    'config: p: invalid regex "(?<!a)b": lookaround is not supported (RE2)',
  );
  assert(compileRe2("\\\\1", "p").test("\\1"), "an escaped backslash followed by a digit is not a backreference");
});

Deno.test("parseStringMatcher compiles each kind", () => {
  const m = (raw: Record<string, unknown>) => parseStringMatcher(raw, "m");
  assert(m({ exact: "a" }).test("a") && !m({ exact: "a" }).test("A"));
  assert(m({ exact: "a", ignore_case: true }).test("A"));
  assert(m({ prefix: "ab" }).test("abc") && !m({ prefix: "ab" }).test("xab"));
  assert(m({ prefix: "AB", ignore_case: true }).test("abc"));
  assert(m({ suffix: "bc" }).test("abc") && m({ suffix: "BC", ignore_case: true }).test("abc"));
  assert(m({ contains: "b" }).test("abc") && m({ contains: "B", ignore_case: true }).test("abc"));
  assert(m({ safe_regex: { regex: "a.c" } }).test("abc") && !m({ safe_regex: { regex: "a.c" } }).test("abcd"));
  assertConfigError(() => m({}), "config: m: one of exact, prefix, suffix, contains, safe_regex is required");
  assertConfigError(() => m({ custom: {} }), "config: m.custom: custom string matchers are not supported");
});

Deno.test("parseQuery decodes first values", () => {
  assertEquals([...parseQuery("/p?a=1&b&c=%41%20&a=2&=x&d=%zz#e=5")], [["a", "1"], ["b", ""], ["c", "A "], ["", "x"], [
    "d",
    "%zz",
  ]]);
  assertEquals(parseQuery("/p").size, 0);
});

Deno.test("isGrpcContentType accepts application/grpc and its +/; forms", () => {
  assert(isGrpcContentType("application/grpc"));
  assert(isGrpcContentType("application/grpc+json"));
  assert(isGrpcContentType("application/grpc;charset=utf-8"));
  assert(!isGrpcContentType("application/grpc-web"));
  assert(!isGrpcContentType(undefined));
});

Deno.test("compileRegexRewrite handles \\0, \\\\ and rejects bad rewrites", () => {
  assertEquals(compileRegexRewrite("b+", "[\\0]", "r").apply("abbcb"), "a[bb]c[b]");
  assertEquals(compileRegexRewrite("x", "\\\\", "r").apply("axa"), "a\\a");
  assertConfigError(() => compileRegexRewrite("x", "\\q", "r"), 'config: r.substitution: invalid rewrite "\\\\q"');
  assertConfigError(
    () => compileRegexRewrite("(", "", "r"),
    'config: r.pattern.regex: invalid regex "(": Unterminated group',
  );
});

Deno.test("compileRegexRewrite skips an empty match at the end of the previous one, as RE2", () => {
  assertEquals(compileRegexRewrite(".*", "x", "r").apply("/a"), "x");
  assertEquals(compileRegexRewrite("a*", "-", "r").apply("baac"), "-b-c-");
  assertEquals(compileRegexRewrite("(?P<n>o)", "0", "r").apply("foo"), "f00");
});
