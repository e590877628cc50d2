/**
 * Distributed tracing: the connection manager's `tracing` config, the `x-request-id` sampling decision, W3C and B3
 * propagation, spans, and the OpenTelemetry tracer's OTLP exporter (gRPC and HTTP).
 *
 * @module
 */
export {
  type BootstrapTracing,
  bootstrapTracing,
  type CustomTag,
  OPENTELEMETRY_CONFIG_TYPE,
  type OpenTelemetryProvider,
  type OtlpTransport,
  parseBootstrapTracing,
  parseTracingConfig,
  parseTracingProvider,
  setBootstrapTracing,
  type TracingConfig,
  type TracingProvider,
  ZIPKIN_CONFIG_TYPE,
  type ZipkinProvider,
  type ZipkinTransport,
} from "./config.ts";
export { ZipkinExporter, zipkinSpanJson } from "./zipkin.ts";
export { type ActiveSpan, Tracer, type TracerContext, type TracingStats } from "./tracer.ts";
export { type BatchOptions, EXPORT_METHOD, MAX_QUEUED_SPANS, OtlpExporter } from "./opentelemetry.ts";
export { encodeExportTraceServiceRequest, type ExportResource } from "./otlp_encoder.ts";
export {
  extractContext,
  formatTraceparent,
  type InjectContext,
  injectContext,
  type InjectMode,
  OTEL_INJECT,
  parseB3Single,
  parseTraceparent,
  type PropagationFormat,
  randomHexId,
  type SpanContext,
} from "./propagation.ts";
export {
  decideTrace,
  requestIdInteger,
  type SamplingRates,
  type TraceReason,
  traceReasonOf,
  withTraceReason,
} from "./sampler.ts";
export { nowNs, type SpanEvent, type SpanKind, type SpanRecord, type SpanStatus } from "./span.ts";
