import { assertEquals } from "../../tests/assert.ts";
import { assertConfigError } from "../../tests/helpers/router.ts";
import { ObjReader } from "../config/reader.ts";
import {
  type OpenTelemetryProvider,
  parseBootstrapTracing,
  parseTracingConfig,
  type TracingProvider,
} from "./config.ts";

/** The provider as the OpenTelemetry one (fails otherwise). */
function otel(p: TracingProvider | undefined): OpenTelemetryProvider {
  if (p?.name !== "envoy.tracers.opentelemetry") throw new Error(`not an OpenTelemetry provider: ${p?.name}`);
  return p;
}

const parse = (raw: unknown) => parseTracingConfig(new ObjReader(raw, "hcm.tracing"));
const OTEL = "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig";

Deno.test("parseTracingConfig defaults: 100 % sampling, path tags of 256, no provider", () => {
  const c = parse({});
  assertEquals(c.rates, { client: 10000, random: 10000, overall: 10000 });
  assertEquals(c.maxPathTagLength, 256);
  assertEquals(c.provider, undefined);
  assertEquals(c.customTags, []);
});

Deno.test("parseTracingConfig reads percents, tags and the OpenTelemetry provider over gRPC", () => {
  const c = parse({
    random_sampling: { value: 12.5 },
    overall_sampling: { value: 50 },
    client_sampling: { value: 0 },
    verbose: true,
    spawn_upstream_span: true,
    max_path_tag_length: 64,
    custom_tags: [
      { tag: "a", literal: { value: "b" } },
      { tag: "h", request_header: { name: "X-Tenant", default_value: "none" } },
    ],
    provider: {
      name: "envoy.tracers.opentelemetry",
      typed_config: {
        "@type": OTEL,
        service_name: "edge",
        grpc_service: { envoy_grpc: { cluster_name: "otel", authority: "collector" }, timeout: "0.25s" },
        resource_detectors: [{ name: "envoy.tracers.opentelemetry.resource_detectors.environment" }],
      },
    },
  });
  assertEquals(c.rates, { client: 0, random: 1250, overall: 5000 });
  assertEquals(c.customTags[1], { tag: "h", kind: "request_header", name: "x-tenant", defaultValue: "none" });
  assertEquals(otel(c.provider).serviceName, "edge");
  assertEquals(c.provider?.transport, {
    kind: "grpc",
    cluster: "otel",
    authority: "collector",
    timeoutMs: 250,
    metadata: [],
    clusterPath: "hcm.tracing.provider.typed_config.grpc_service.envoy_grpc.cluster_name",
  });
});

Deno.test("parseTracingConfig reads the OTLP/HTTP service", () => {
  const c = parse({
    provider: {
      name: "envoy.tracers.opentelemetry",
      typed_config: {
        "@type": OTEL,
        http_service: {
          http_uri: { uri: "http://collector:4318/v1/traces", cluster: "otel", timeout: "1s" },
          request_headers_to_add: [{ header: { key: "Authorization", value: "Bearer x" } }],
        },
      },
    },
  });
  const t = c.provider!.transport!;
  assertEquals(t.kind, "http");
  if (t.kind !== "http") return;
  assertEquals(t.path, "/v1/traces");
  assertEquals(t.authority, "collector:4318");
  assertEquals(t.headers, [{ key: "authorization", value: "Bearer x" }]);
  assertEquals(otel(c.provider).serviceName, "unknown_service:envoy");
});

Deno.test("parseTracingConfig errors name the field", () => {
  assertConfigError(
    () => parse({ random_sampling: { value: -1 } }),
    "config: hcm.tracing.random_sampling.value: -1 is below the minimum 0",
  );
  assertConfigError(
    () => parse({ provider: { name: "envoy.tracers.datadog", typed_config: { "@type": "x" } } }),
    'config: hcm.tracing.provider.name: tracer "envoy.tracers.datadog" is not supported (Ferry has envoy.tracers.opentelemetry and envoy.tracers.zipkin)',
  );
  assertConfigError(
    () =>
      parse({
        provider: {
          name: "envoy.tracers.opentelemetry",
          typed_config: { "@type": OTEL, grpc_service: { google_grpc: { target_uri: "x" } } },
        },
      }),
    "config: hcm.tracing.provider.typed_config.grpc_service.google_grpc: is not supported (use envoy_grpc with a cluster)",
  );
  assertConfigError(
    () => parse({ custom_tags: [{ tag: "m", metadata: { kind: { request: {} } } }] }),
    "config: hcm.tracing.custom_tags[0].metadata: is not supported (Ferry has no dynamic metadata)",
  );
  assertConfigError(() => parse({ sampling: 1 }), "config: hcm.tracing.sampling: unknown field");
  assertConfigError(
    () =>
      parse({
        provider: {
          name: "envoy.tracers.opentelemetry",
          typed_config: { "@type": OTEL, sampler: { name: "envoy.tracers.opentelemetry.samplers.dynatrace" } },
        },
      }),
    'config: hcm.tracing.provider.typed_config.sampler: sampler "envoy.tracers.opentelemetry.samplers.dynatrace" is not supported (only always_on)',
  );
});

Deno.test("parseBootstrapTracing reads the deprecated tracing.http provider", () => {
  const p = parseBootstrapTracing({
    http: { name: "envoy.tracers.opentelemetry", typed_config: { "@type": OTEL, service_name: "boot" } },
  }, "tracing");
  assertEquals(otel(p).serviceName, "boot");
  assertEquals(p?.transport, undefined);
  assertEquals(parseBootstrapTracing({}, "tracing"), undefined);
});

Deno.test("parseTracingConfig reads envoy.tracers.zipkin", () => {
  const ZIPKIN = "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig";
  const c = parse({
    provider: {
      name: "envoy.tracers.zipkin",
      typed_config: {
        "@type": ZIPKIN,
        collector_cluster: "zipkin",
        collector_endpoint: "/api/v2/spans",
        collector_endpoint_version: "HTTP_JSON",
        trace_id_128bit: true,
        shared_span_context: false,
        trace_context_option: "USE_B3_WITH_W3C_PROPAGATION",
      },
    },
  });
  const p = c.provider!;
  assertEquals(p.name, "envoy.tracers.zipkin");
  if (p.name !== "envoy.tracers.zipkin") return;
  assertEquals(p.traceId128, true);
  assertEquals(p.sharedSpanContext, false);
  assertEquals(p.w3c, true);
  assertEquals(p.transport.authority, "zipkin");
  assertEquals(p.transport.clusterPath, "hcm.tracing.provider.typed_config.collector_cluster");
  assertConfigError(
    () =>
      parse({
        provider: {
          name: "envoy.tracers.zipkin",
          typed_config: {
            "@type": ZIPKIN,
            collector_cluster: "z",
            collector_endpoint: "/x",
            collector_endpoint_version: "HTTP_PROTO",
          },
        },
      }),
    'config: hcm.tracing.provider.typed_config.collector_endpoint_version: "HTTP_PROTO" is not supported',
  );
});
