import { assertEquals, assertThrows } from "../../tests/assert.ts";
import { extAuthzFilterFactory, parseExtAuthzPerRoute } from "./ext_authz.ts";

const parse = (raw: Record<string, unknown>) => extAuthzFilterFactory.parseConfig(raw, "f");
const HTTP = { server_uri: { uri: "http://authz", cluster: "authz", timeout: "0.5s" } };

Deno.test("ext_authz parseConfig reads the HTTP service with Envoy's defaults", () => {
  const c = parse({ http_service: { ...HTTP, path_prefix: "/auth" }, status_on_error: { code: "ServiceUnavailable" } });
  assertEquals(c.service.kind, "http");
  assertEquals(c.service.timeoutMs, 500);
  assertEquals(c.statusOnError, 503);
  assertEquals(c.failureModeAllow, false);
  assertEquals(c.withRequestBody, undefined);
  assertEquals(parse({ http_service: HTTP }).statusOnError, 403);
  assertThrows(() => parse({ http_service: { ...HTTP, path_prefix: "auth" } }), "f.http_service.path_prefix");
  assertThrows(() => parse({ http_service: HTTP, grpc_service: {} }), "f");
});

Deno.test("ext_authz parseConfig reads the gRPC service, body settings and filter_enabled", () => {
  const c = parse({
    grpc_service: { envoy_grpc: { cluster_name: "a" } },
    with_request_body: { max_request_bytes: 100, allow_partial_message: true },
    filter_enabled: { default_value: { numerator: 50 } },
  });
  assertEquals(c.service, { kind: "grpc", cluster: "a", target: undefined, timeoutMs: 200, initialMetadata: [] });
  assertEquals(c.withRequestBody, { maxBytes: 100, allowPartial: true, packAsBytes: false });
  assertEquals(c.enabledFraction, 0.5);
  assertThrows(() => parse({ grpc_service: { envoy_grpc: {} } }), "f.grpc_service.envoy_grpc.cluster_name");
  assertThrows(() => parse({ grpc_service: { envoy_grpc: { cluster_name: "a" } }, bogus: 1 }), "f.bogus");
});

Deno.test("parseExtAuthzPerRoute reads disabled and check_settings", () => {
  const T = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute";
  assertEquals(parseExtAuthzPerRoute({ "@type": T, disabled: true }, "p").disabled, true);
  const cs = parseExtAuthzPerRoute(
    { "@type": T, check_settings: { context_extensions: { a: "1" }, disable_request_body_buffering: true } },
    "p",
  );
  assertEquals(cs.contextExtensions, { a: "1" });
  assertEquals(cs.disableBody, true);
});
