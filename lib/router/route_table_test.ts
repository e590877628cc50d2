import { deepStrictEqual as assertEquals, ok as assert, strictEqual } from "node:assert/strict";
import { HeaderMap } from "../api/headers.ts";
import { compileRe2 } from "./matchers.ts";
import { literalPrefix, RouteTable, stripHostPort } from "./route_table.ts";
import { config, req, table } from "../../tests/helpers/router.ts";

const route = (name: string, match: Record<string, unknown>) => ({ name, match, route: { cluster: name } });
const host = (name: string, domains: string[]) => ({ name, domains, routes: [route(name, { prefix: "/" })] });

function vhostOf(t: RouteTable, authority: string): string | undefined {
  return t.route(req("/", authority))?.vhost.name;
}

function nameOf(t: RouteTable, path: string, extra: Record<string, string> = {}): string | undefined {
  const r = t.route(req(path, "example.com", extra));
  return r === null ? undefined : r.route.name;
}

Deno.test("RouteTable picks exact, then longest suffix, then longest prefix wildcard, then *", () => {
  const t = new RouteTable(config({
    virtual_hosts: [
      host("exact", ["api.example.com"]),
      host("suffix-short", ["*.com"]),
      host("suffix-long", ["*.example.com"]),
      host("dash", ["*-admin.example.com"]),
      host("prefix-short", ["api.*"]),
      host("prefix-long", ["api.example.*"]),
      host("default", ["*"]),
    ],
  }));
  assertEquals(vhostOf(t, "api.example.com"), "exact");
  assertEquals(vhostOf(t, "www.example.com"), "suffix-long");
  assertEquals(vhostOf(t, "x-admin.example.com"), "dash");
  assertEquals(vhostOf(t, "foo.com"), "suffix-short");
  assertEquals(vhostOf(t, "api.example.org"), "prefix-long");
  assertEquals(vhostOf(t, "api.other.org"), "prefix-short");
  assertEquals(vhostOf(t, "other.org"), "default");
  // A wildcard must match at least one character: "*.example.com" does not match "example.com"... but "*.com" does.
  assertEquals(vhostOf(t, "example.com"), "suffix-short");
  assertEquals(vhostOf(t, ".com"), "default");
});

Deno.test("RouteTable matches hosts case-insensitively", () => {
  const t = new RouteTable(config({ virtual_hosts: [host("a", ["Example.COM"]), host("w", ["*.Example.com"])] }));
  assertEquals(vhostOf(t, "EXAMPLE.com"), "a");
  assertEquals(vhostOf(t, "WWW.example.COM"), "w");
});

Deno.test("RouteTable tries the host with its port, then without", () => {
  const t = new RouteTable(config({
    virtual_hosts: [
      host("plain", ["example.com"]),
      host("port", ["example.com:8080"]),
      host("wild", ["*.example.com"]),
      host("v6", ["[::1]"]),
    ],
  }));
  assertEquals(vhostOf(t, "example.com"), "plain");
  assertEquals(vhostOf(t, "example.com:8080"), "port");
  assertEquals(vhostOf(t, "example.com:9090"), "plain");
  assertEquals(vhostOf(t, "a.example.com:9090"), "wild");
  assertEquals(vhostOf(t, "[::1]:443"), "v6");
  assertEquals(vhostOf(t, "nothing.org"), undefined);
  const ignore = new RouteTable(config({
    virtual_hosts: [host("port", ["example.com:8080"]), host("plain", ["example.com"])],
    ignore_port_in_host_matching: true,
  }));
  assertEquals(vhostOf(ignore, "example.com:8080"), "plain");
});

Deno.test("stripHostPort strips only a numeric port", () => {
  assertEquals(stripHostPort("a.com:80"), "a.com");
  assertEquals(stripHostPort("a.com"), "a.com");
  assertEquals(stripHostPort("a.com:"), "a.com:");
  assertEquals(stripHostPort("a.com:x"), "a.com:x");
  assertEquals(stripHostPort("[::1]:80"), "[::1]");
  assertEquals(stripHostPort("[::1]"), "[::1]");
  assertEquals(stripHostPort("::1"), "::1");
});

Deno.test("RouteTable without :authority finds nothing unless only * exists", () => {
  const headers = HeaderMap.from({ ":path": "/" });
  assertEquals(new RouteTable(config({ virtual_hosts: [host("a", ["a.com"])] })).route(headers), null);
  assertEquals(new RouteTable(config({ virtual_hosts: [host("d", ["*"])] })).route(headers)?.vhost.name, "d");
});

Deno.test("RouteTable returns the first matching route, and the same result object each time", () => {
  const t = table([route("a", { path: "/a" }), route("prefix", { prefix: "/" }), route("never", { prefix: "/a" })]);
  assertEquals(nameOf(t, "/a"), "a");
  assertEquals(nameOf(t, "/a/b"), "prefix");
  strictEqual(t.route(req("/x")), t.route(req("/y")));
  assertEquals(table([route("a", { path: "/a" })]).route(req("/b")), null);
});

Deno.test("RouteTable prefix and path matches ignore the query string and fragment", () => {
  const t = table([route("exact", { path: "/a" }), route("pre", { prefix: "/b?" }), route("p", { prefix: "/p" })]);
  assertEquals(nameOf(t, "/a?x=1"), "exact");
  assertEquals(nameOf(t, "/a#frag"), "exact");
  assertEquals(nameOf(t, "/ab"), undefined);
  // A prefix containing "?" can never match: the query is not part of the matched path.
  assertEquals(nameOf(t, "/b?x"), undefined);
  assertEquals(nameOf(t, "/p?x"), "p");
  assertEquals(nameOf(t, "/?p"), undefined);
});

Deno.test("RouteTable case_sensitive: false folds case for prefix and path", () => {
  const t = table([
    route("pre", { prefix: "/API", case_sensitive: false }),
    route("path", { path: "/Exact", case_sensitive: false }),
    route("sensitive", { prefix: "/Case" }),
  ]);
  assertEquals(nameOf(t, "/api/x"), "pre");
  assertEquals(nameOf(t, "/aPi?Q=1"), "pre");
  assertEquals(nameOf(t, "/EXACT?x"), "path");
  assertEquals(nameOf(t, "/exactly"), undefined);
  assertEquals(nameOf(t, "/Case/1"), "sensitive");
  assertEquals(nameOf(t, "/case/1"), undefined);
});

Deno.test("RouteTable safe_regex matches the whole path without the query", () => {
  const t = table([route("re", { safe_regex: { regex: "/v[0-9]+/users" } })]);
  assertEquals(nameOf(t, "/v12/users"), "re");
  assertEquals(nameOf(t, "/v12/users?x=/v1/users"), "re");
  assertEquals(nameOf(t, "/v12/users/1"), undefined);
  assertEquals(nameOf(t, "/x/v1/users"), undefined);
  const ci = table([route("ci", { safe_regex: { regex: "(?i)/abc" } })]);
  assertEquals(nameOf(ci, "/ABC"), "ci");
  const named = table([route("n", { safe_regex: { regex: "/(?P<id>[0-9]+)" } })]);
  assertEquals(nameOf(named, "/42"), "n");
});

Deno.test("RouteTable path_separated_prefix matches the prefix exactly or followed by /", () => {
  const t = table([route("foo", { path_separated_prefix: "/foo" })]);
  assertEquals(nameOf(t, "/foo"), "foo");
  assertEquals(nameOf(t, "/foo/"), "foo");
  assertEquals(nameOf(t, "/foo/bar"), "foo");
  assertEquals(nameOf(t, "/foo?x"), "foo");
  assertEquals(nameOf(t, "/foo#x"), "foo");
  assertEquals(nameOf(t, "/foobar"), undefined);
  assertEquals(nameOf(t, "/fo"), undefined);
  const ci = table([route("ci", { path_separated_prefix: "/Foo", case_sensitive: false })]);
  assertEquals(nameOf(ci, "/FOO/x"), "ci");
  assertEquals(nameOf(ci, "/FOOx"), undefined);
});

Deno.test("RouteTable header matchers: values, presence, inversion, missing headers", () => {
  const m = (headers: unknown[]) => table([route("r", { prefix: "/", headers })]);
  const hit = (t: RouteTable, extra: Record<string, string>) => nameOf(t, "/", extra) === "r";
  const exact = m([{ name: "x-env", string_match: { exact: "prod" } }]);
  assert(hit(exact, { "x-env": "prod" }));
  assert(!hit(exact, { "x-env": "Prod" }));
  assert(!hit(exact, {}));
  const ic = m([{ name: "x-env", string_match: { exact: "prod", ignore_case: true } }]);
  assert(hit(ic, { "x-env": "PROD" }));
  const inv = m([{ name: "x-env", exact_match: "prod", invert_match: true }]);
  assert(hit(inv, { "x-env": "dev" }));
  assert(!hit(inv, { "x-env": "prod" }));
  assert(!hit(inv, {}), "a missing header fails an inverted value match");
  const empty = m([{ name: "x-env", exact_match: "", treat_missing_header_as_empty: true }]);
  assert(hit(empty, {}));
  const present = m([{ name: "x-a" }]);
  assert(hit(present, { "x-a": "" }));
  assert(!hit(present, {}));
  const absent = m([{ name: "x-a", present_match: false }]);
  assert(hit(absent, {}));
  assert(!hit(absent, { "x-a": "1" }));
  const notPresent = m([{ name: "x-a", present_match: true, invert_match: true }]);
  assert(hit(notPresent, {}));
  const re = m([{ name: "x-id", safe_regex_match: { regex: "\\d{3}" } }]);
  assert(hit(re, { "x-id": "123" }));
  assert(!hit(re, { "x-id": "1234" }));
  const range = m([{ name: "x-n", range_match: { start: -10, end: 0 } }]);
  assert(hit(range, { "x-n": "-1" }));
  assert(!hit(range, { "x-n": "0" }));
  assert(!hit(range, { "x-n": "x" }));
  const legacy = m([
    { name: "a", prefix_match: "pre" },
    { name: "b", suffix_match: "fix" },
    { name: "c", contains_match: "mid" },
  ]);
  assert(hit(legacy, { a: "prefix", b: "suffix", c: "amidst" }));
  assert(!hit(legacy, { a: "prefix", b: "suffix", c: "amist" }));
  // Repeated headers are matched joined with ",".
  const joined = m([{ name: "x-r", exact_match: "1,2" }]);
  const h = req("/");
  h.add("x-r", "1");
  h.add("x-r", "2");
  assertEquals(joined.route(h)?.route.name, "r");
  // Pseudo-headers can be matched.
  const method = m([{ name: ":method", exact_match: "POST" }]);
  assert(!hit(method, {}));
});

Deno.test("RouteTable query parameter matchers", () => {
  const t = table([route("r", {
    prefix: "/",
    query_parameters: [
      { name: "debug", present_match: true },
      { name: "user", string_match: { prefix: "a b" } },
    ],
  })]);
  assertEquals(nameOf(t, "/?debug&user=a%20bc"), "r");
  assertEquals(nameOf(t, "/?user=a%20bc&debug=0"), "r");
  assertEquals(nameOf(t, "/?user=a%20bc"), undefined);
  assertEquals(nameOf(t, "/?debug=1&user=xa"), undefined);
  assertEquals(nameOf(t, "/?debug=1&user=a+b"), undefined, "+ is not decoded as a space");
  assertEquals(nameOf(t, "/?debug=1#user=a%20b"), undefined, "the fragment is not part of the query");
  // Only the first value of a repeated parameter counts.
  const first = table([route("r", { prefix: "/", query_parameters: [{ name: "x", string_match: { exact: "1" } }] })]);
  assertEquals(nameOf(first, "/?x=1&x=2"), "r");
  assertEquals(nameOf(first, "/?x=2&x=1"), undefined);
});

Deno.test("RouteTable grpc match requires a gRPC content-type", () => {
  const t = table([route("grpc", { prefix: "/", grpc: {} }), route("other", { prefix: "/" })]);
  assertEquals(nameOf(t, "/svc/M", { "content-type": "application/grpc" }), "grpc");
  assertEquals(nameOf(t, "/svc/M", { "content-type": "application/grpc+proto" }), "grpc");
  assertEquals(nameOf(t, "/svc/M", { "content-type": "application/grpc-web" }), "other");
  assertEquals(nameOf(t, "/svc/M"), "other");
});

Deno.test("RouteTable require_tls redirects insecure requests", () => {
  const all = table([route("r", { prefix: "/" })], { require_tls: "ALL" });
  const insecure = all.route(req("/x"))!;
  assert(insecure.route.action.kind === "redirect" && insecure.route.action.tlsRedirect);
  assertEquals(all.route(req("/x"), { secure: true })?.route.name, "r");
  assertEquals(all.route(req("/x", "a", { "x-forwarded-proto": "https" }))?.route.name, "r");
  assertEquals(
    all.route(req("/x", "a", { "x-forwarded-proto": "http" }), { secure: true })?.route.action.kind,
    "redirect",
    "x-forwarded-proto decides, as in Envoy",
  );
  const ext = table([route("r", { prefix: "/" })], { require_tls: "EXTERNAL_ONLY" });
  assertEquals(ext.route(req("/x"))?.route.action.kind, "redirect");
  assertEquals(ext.route(req("/x", "a", { "x-envoy-internal": "true" }))?.route.name, "r");
  assertEquals(ext.route(req("/x"), { internal: true })?.route.name, "r");
});

Deno.test("RouteTable.virtualHost exposes the selected host", () => {
  const t = new RouteTable(config({ virtual_hosts: [host("a", ["a.com"])] }));
  assertEquals(t.virtualHost(req("/", "a.com"))?.name, "a");
  assertEquals(t.virtualHost(req("/", "b.com")), undefined);
});

Deno.test("literalPrefix finds the literal start of a regex, conservatively", () => {
  const p = (src: string) => literalPrefix(compileRe2(src, "p", { anchored: true }));
  assertEquals(p("/items4/[0-9]+"), "/items4/");
  assertEquals(p("/a\\.b/.*"), "/a.b/");
  assertEquals(p("/ab*"), "/a");
  assertEquals(p("/ab+"), "/ab");
  assertEquals(p("/ab?"), "/a");
  assertEquals(p("/ab{2}"), "/a");
  assertEquals(p("/a|/b"), "");
  assertEquals(p("(?i)/abc"), "");
  assertEquals(p("\\d+"), "");
  assertEquals(p("^/x(y)"), "/x");
  assertEquals(p("/(?P<id>[0-9]+)"), "/");
});

Deno.test("RouteTable caches slow-path host resolutions without growing unbounded", () => {
  const t = new RouteTable(config({
    virtual_hosts: [host("a", ["a.com"]), host("w", ["*.w.com"])],
  }));
  for (let i = 0; i < 3000; i++) {
    assertEquals(vhostOf(t, `h${i}.w.com:${1000 + (i % 7)}`), "w");
    assertEquals(vhostOf(t, `x${i}.org`), undefined);
  }
  assertEquals(vhostOf(t, "A.COM:80"), "a");
  assertEquals(vhostOf(t, "A.COM:80"), "a");
  assertEquals(vhostOf(t, "nope.org"), undefined);
  assertEquals(vhostOf(t, "nope.org"), undefined);
});

Deno.test("RouteTable head pre-check never hides a match", () => {
  const t = table([
    route("long", { prefix: "/abcd" }),
    route("exact", { path: "/abc" }),
    route("uni", { prefix: "/\u0100bc" }),
    route("short", { prefix: "/" }),
  ]);
  assertEquals(nameOf(t, "/abcd"), "long");
  assertEquals(nameOf(t, "/abcde?x"), "long");
  assertEquals(nameOf(t, "/abc"), "exact");
  assertEquals(nameOf(t, "/abc?d"), "exact");
  assertEquals(nameOf(t, "/\u0100bcd"), "uni");
  assertEquals(nameOf(t, "/\u0200bc"), "short", "same low byte, different character");
  assertEquals(nameOf(t, "/"), "short");
  assertEquals(nameOf(t, "/ab"), "short");
});

Deno.test("RouteTable matches CONNECT only on connect_matcher routes, and those only CONNECT", () => {
  const t = table([route("tunnel", { connect_matcher: {} }), route("web", { prefix: "" })]);
  const connect = (target: string) => t.route(req(target, target, { ":method": "CONNECT" }))?.route.name;
  strictEqual(connect("db.internal:5432"), "tunnel");
  strictEqual(nameOf(t, "/"), "web");
  const none = table([route("web", { prefix: "" })]);
  strictEqual(none.route(req("x:1", "x:1", { ":method": "CONNECT" })), null);
});
