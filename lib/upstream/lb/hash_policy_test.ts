import { HeaderMap } from "../../api/headers.ts";
import type { HashPolicy } from "../../router/types.ts";
import { assert, assertEquals } from "../../../tests/assert.ts";
import { computeHashKey } from "./hash_policy.ts";
import { hashKey52 } from "./xxhash64.ts";

const header = (name: string, terminal = false): HashPolicy => ({
  kind: "header",
  headerName: name,
  regexRewrite: undefined,
  terminal,
});

Deno.test("computeHashKey hashes a header, a query parameter and the source IP with xxHash64", () => {
  const h = new HeaderMap([":path", "/a?x=1&user=bob&y", "x-user", "alice"]);
  assertEquals(computeHashKey([header("x-user")], h, "10.0.0.1").hashKey, hashKey52("alice"));
  assertEquals(
    computeHashKey([{ kind: "query_parameter", name: "user", terminal: false }], h, "").hashKey,
    hashKey52("bob"),
  );
  assertEquals(
    computeHashKey([{ kind: "connection_properties", sourceIp: true, terminal: false }], h, "10.0.0.1").hashKey,
    hashKey52("10.0.0.1"),
  );
  // Nothing to hash: no key (the balancer picks at random).
  assertEquals(computeHashKey([header("x-missing")], h, "10.0.0.1").hashKey, undefined);
});

Deno.test("computeHashKey combines policies and stops at a terminal one that hashed", () => {
  const h = new HeaderMap(["x-a", "1", "x-b", "2"]);
  const both = computeHashKey([header("x-a"), header("x-b")], h, undefined).hashKey;
  const a = computeHashKey([header("x-a")], h, undefined).hashKey;
  assert(both !== undefined && both !== a);
  assertEquals(computeHashKey([header("x-a", true), header("x-b")], h, undefined).hashKey, a);
  // A terminal policy without input does not stop the walk.
  assertEquals(computeHashKey([header("x-none", true), header("x-a")], h, undefined).hashKey, a);
});

Deno.test("computeHashKey uses a cookie, or generates one when a ttl is set", () => {
  const cookie: HashPolicy = {
    kind: "cookie",
    name: "sticky",
    ttlMs: 60_000,
    path: "/",
    attributes: [{ name: "SameSite", value: "Lax" }],
    terminal: false,
  };
  const withCookie = new HeaderMap(["cookie", 'a=b; sticky="abc"']);
  assertEquals(computeHashKey([cookie], withCookie, "10.0.0.1"), { hashKey: hashKey52("abc"), setCookie: undefined });
  const r = computeHashKey([cookie], new HeaderMap(), "10.0.0.1");
  const m = r.setCookie?.match(/^sticky="([0-9a-f]{16})"; Max-Age=60; Path=\/; SameSite=Lax; HttpOnly$/);
  assert(m, r.setCookie);
  assertEquals(r.hashKey, hashKey52(m[1]!));
  // The client that sends the generated cookie back lands on the same key.
  assertEquals(computeHashKey([cookie], new HeaderMap(["cookie", `sticky=${m[1]}`]), "10.9.9.9").hashKey, r.hashKey);
  // Without a ttl, a missing cookie gives no hash and no cookie.
  assertEquals(computeHashKey([{ ...cookie, ttlMs: undefined }], new HeaderMap(), "10.0.0.1"), {
    hashKey: undefined,
    setCookie: undefined,
  });
});
