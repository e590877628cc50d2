import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { cidrMatcher, isInternalRequest, sanitizeInternalRequest } from "./internal_request.ts";
import type { InternalRequestPolicy } from "./internal_request.ts";
import { config, req } from "../../tests/helpers/router.ts";

const routeConfig = config({ virtual_hosts: [], internal_only_headers: ["X-Secret"] });
const lan = cidrMatcher(["10.0.0.0/8", "127.0.0.1/32", "fd00::/8"]);

function policy(useRemoteAddress: boolean, extra: Partial<InternalRequestPolicy> = {}): InternalRequestPolicy {
  return { routeConfig, useRemoteAddress, xffNumTrustedHops: 0, isInternalAddress: lan, ...extra };
}

Deno.test("isInternalRequest with use_remote_address: the peer, and only without x-forwarded-for", () => {
  assertEquals(isInternalRequest(policy(true), req("/"), "10.1.2.3"), true);
  assertEquals(isInternalRequest(policy(true), req("/"), "8.8.8.8"), false);
  assertEquals(isInternalRequest(policy(true), req("/", "a", { "x-forwarded-for": "10.9.9.9" }), "10.1.2.3"), false);
  const hops = policy(true, { xffNumTrustedHops: 1 });
  assertEquals(isInternalRequest(hops, req("/"), "10.1.2.3"), true);
});

Deno.test("isInternalRequest without use_remote_address: a single x-forwarded-for address, no trusted hops", () => {
  const p = policy(false);
  assertEquals(isInternalRequest(p, req("/"), "10.1.2.3"), false, "no x-forwarded-for: external");
  assertEquals(isInternalRequest(p, req("/", "a", { "x-forwarded-for": " 10.0.0.7 " }), "8.8.8.8"), true);
  assertEquals(isInternalRequest(p, req("/", "a", { "x-forwarded-for": "10.0.0.7, 10.0.0.8" }), "8.8.8.8"), false);
  assertEquals(isInternalRequest(p, req("/", "a", { "x-forwarded-for": "8.8.4.4" }), "10.1.2.3"), false);
  assertEquals(isInternalRequest(p, req("/", "a", { "x-forwarded-for": "not-an-ip" }), "10.1.2.3"), false);
  const hops = policy(false, { xffNumTrustedHops: 1 });
  assertEquals(isInternalRequest(hops, req("/", "a", { "x-forwarded-for": "10.0.0.7" }), "10.1.2.3"), false);
});

Deno.test("isInternalRequest: without isInternalAddress no request is internal (Envoy >= 1.36)", () => {
  const p: InternalRequestPolicy = { routeConfig, useRemoteAddress: true, xffNumTrustedHops: 0 };
  assertEquals(isInternalRequest(p, req("/"), "127.0.0.1"), false);
});

Deno.test("sanitizeInternalRequest drops a client's x-envoy-internal; marks internal, strips external", () => {
  const internal = req("/", "a", { "x-envoy-internal": "false", "x-secret": "s", "x-other": "o" });
  assertEquals(sanitizeInternalRequest(policy(true), internal, "10.1.2.3"), true);
  assertEquals([internal.getAll("x-envoy-internal"), internal.get("x-secret")], [["true"], "s"]);
  const external = req("/", "a", { "x-envoy-internal": "true", "X-Secret": "s", "x-other": "o" });
  assertEquals(sanitizeInternalRequest(policy(true), external, "8.8.8.8"), false);
  assertEquals([external.has("x-envoy-internal"), external.has("x-secret"), external.get("x-other")], [
    false,
    false,
    "o",
  ]);
});

Deno.test("cidrMatcher matches IPv4, IPv6 and IPv4-mapped addresses; rejects bad ranges", () => {
  const m = cidrMatcher(["172.16.0.0/12", "fc00::/7", "192.168.1.1"]);
  assertEquals(["172.31.255.1", "172.32.0.1", "192.168.1.1", "192.168.1.2"].map(m), [true, false, true, false]);
  assertEquals(["fd12::1", "fe80::1", "::ffff:172.16.0.9", "[fc00::5]", "nonsense", "1.2.3"].map(m), [
    true,
    false,
    true,
    true,
    false,
    false,
  ]);
  assertEquals(cidrMatcher(["0.0.0.0/0"])("203.0.113.9"), true);
  assertEquals(cidrMatcher(["::/0"])("203.0.113.9"), false, "an IPv4 client is not in an IPv6 range");
  throws(() => cidrMatcher(["10.0.0.0/33"]), /"10.0.0.0\/33" is not a CIDR range/);
  throws(() => cidrMatcher(["10.0.0/8"]), TypeError);
  throws(() => cidrMatcher(["1::2::3/64"]), TypeError);
});
