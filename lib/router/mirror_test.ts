import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { HeaderMap } from "../api/headers.ts";
import { ObjReader } from "../config/reader.ts";
import { mirrorCluster, parseMirrorPolicies, shadowAuthority } from "./mirror.ts";

const parse = (policies: unknown) => parseMirrorPolicies(new ObjReader({ request_mirror_policies: policies }, "route"));

Deno.test("shadowAuthority appends -shadow before the port, as Envoy", () => {
  assertEquals(shadowAuthority("api.example.com"), "api.example.com-shadow");
  assertEquals(shadowAuthority("api.example.com:8080"), "api.example.com-shadow:8080");
  assertEquals(shadowAuthority("127.0.0.1:80"), "127.0.0.1-shadow:80");
  assertEquals(shadowAuthority("[::1]:80"), "[::1]-shadow:80");
  assertEquals(shadowAuthority("[::1]"), "[::1]-shadow");
});

Deno.test("parseMirrorPolicies reads cluster, cluster_header, runtime_fraction and the flags", () => {
  const [a, b] = parse([
    { cluster: "shadow", runtime_fraction: { default_value: { numerator: 25, denominator: "TEN_THOUSAND" } } },
    { cluster_header: "X-Mirror", disable_shadow_host_suffix_append: true, trace_sampled: false },
  ]);
  assertEquals(a!.cluster, "shadow");
  assertEquals(a!.fraction, 0.0025);
  assertEquals(a!.denominator, 10_000);
  assertEquals(a!.traceSampled, true);
  assertEquals(b!.clusterHeader, "x-mirror");
  assertEquals(b!.fraction, 1);
  assertEquals(b!.disableShadowHostSuffixAppend, true);
  assertThrows(() => parse([{}]), "route.request_mirror_policies[0]");
  assertThrows(() => parse([{ cluster: "a", cluster_header: "b" }]), "request_mirror_policies[0]");
  assertThrows(() => parse([{ cluster: "a", extra: 1 }]), "request_mirror_policies[0].extra");
  assertThrows(() => parse([{ cluster_header: ":authority" }]), "cluster_header");
});

Deno.test("mirrorCluster rolls the fraction, reads cluster_header, and lets a runtime value win", () => {
  const [p] = parse([{ cluster: "s", runtime_fraction: { default_value: { numerator: 50 }, runtime_key: "k" } }]);
  const h = new HeaderMap();
  assertEquals(mirrorCluster(p!, h, { random: () => 0.49 }), "s");
  assertEquals(mirrorCluster(p!, h, { random: () => 0.5 }), undefined);
  const rt = (v: number | undefined) => ({
    fraction: (k: string | undefined, n: number, d: number) => k === "k" && v !== undefined ? v / d : n / d,
  });
  assertEquals(mirrorCluster(p!, h, { random: () => 0.9, runtime: rt(100) }), "s");
  assertEquals(mirrorCluster(p!, h, { random: () => 0.0, runtime: rt(0) }), undefined);
  assertEquals(mirrorCluster(p!, h, { random: () => 0.49, runtime: rt(undefined) }), "s");
  const [q] = parse([{ cluster_header: "x-to" }]);
  assertEquals(mirrorCluster(q!, h), undefined);
  assertEquals(mirrorCluster(q!, new HeaderMap(["x-to", "c2"])), "c2");
});
