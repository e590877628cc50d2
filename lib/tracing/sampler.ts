/**
 * Envoy's tracing decision, carried in `x-request-id`: the UUID's version nibble (index 14, `4` in a fresh UUIDv4)
 * is rewritten to `9` (sampled), `a` (forced by `x-envoy-force-trace`) or `b` (forced by the client's
 * `x-client-trace-id`), so that every Envoy-compatible hop behind this one makes the same decision. Sampling uses
 * the first 8 hex digits of the request id modulo 10,000, so that hops with equal `random_sampling` agree.
 *
 * @module
 */
import type { HeaderMap } from "../api/headers.ts";

/** Why a request is (or is not) traced (Envoy's `Tracing::Reason`). */
export type TraceReason = "NotTraceable" | "HealthCheck" | "Sampling" | "ServiceForced" | "ClientForced";

/** Sampling rates in hundredths of a percent (0..10000): Envoy's `Percent` turned into its `FractionalPercent`. */
export interface SamplingRates {
  /** `client_sampling`: requests with `x-client-trace-id` traced. */
  readonly client: number;
  /** `random_sampling`: the share of other requests traced (decided on the request id). */
  readonly random: number;
  /** `overall_sampling`: applied after the others, to all. */
  readonly overall: number;
}

const UUID_LENGTH = 36;
const TRACE_BYTE = 14;
const NO_TRACE = "4";
const SAMPLED = "9";
const FORCED = "a";
const CLIENT = "b";

/** The trace reason packed in a request id ("NotTraceable" for one that is not a UUID, or carries none). */
export function traceReasonOf(requestId: string | undefined): TraceReason | "NoTrace" {
  if (requestId === undefined || requestId.length !== UUID_LENGTH) return "NotTraceable";
  switch (requestId[TRACE_BYTE]) {
    case SAMPLED:
      return "Sampling";
    case FORCED:
      return "ServiceForced";
    case CLIENT:
      return "ClientForced";
    default:
      return "NoTrace";
  }
}

/** The request id with `reason` packed in (unchanged when it is not a UUID; reasons not packed clear it). */
export function withTraceReason(requestId: string, reason: TraceReason | "NoTrace"): string {
  if (requestId.length !== UUID_LENGTH) return requestId;
  const c = reason === "Sampling"
    ? SAMPLED
    : reason === "ServiceForced"
    ? FORCED
    : reason === "ClientForced"
    ? CLIENT
    : NO_TRACE;
  return requestId.slice(0, TRACE_BYTE) + c + requestId.slice(TRACE_BYTE + 1);
}

/** The request id's first 8 hex digits as an integer (undefined if they are not hex). */
export function requestIdInteger(requestId: string): number | undefined {
  if (requestId.length < 8) return undefined;
  const head = requestId.slice(0, 8);
  if (!/^[0-9a-fA-F]{8}$/.test(head)) return undefined;
  return parseInt(head, 16);
}

/**
 * Makes the tracing decision for a request and records it in its `x-request-id` (Envoy's
 * `mutateTracingRequestHeader`, then `shouldTraceRequest`). A request id that already carries a decision keeps it
 * (the hop in front decided); otherwise `x-client-trace-id` (within `client_sampling`), `x-envoy-force-trace`, then
 * `random_sampling` decide; `overall_sampling` can still turn any of them off. `random` draws for
 * `client_sampling` (tests pass their own).
 */
export function decideTrace(
  h: HeaderMap,
  rates: SamplingRates,
  random: () => number = Math.random,
): { reason: TraceReason | "NoTrace"; traced: boolean } {
  const rid = h.get("x-request-id");
  if (rid === undefined) return { reason: "NotTraceable", traced: false };
  const n = requestIdInteger(rid);
  if (n === undefined) return { reason: "NotTraceable", traced: false };
  const result = n % 10000;
  let reason = traceReasonOf(rid);
  if (reason === "NotTraceable") return { reason, traced: false };
  if (reason === "NoTrace") {
    if (h.has("x-client-trace-id") && Math.floor(random() * 10000) < rates.client) reason = "ClientForced";
    else if (h.has("x-envoy-force-trace")) reason = "ServiceForced";
    else if (result < rates.random) reason = "Sampling";
  }
  if (!(result < rates.overall)) reason = "NoTrace";
  if (reason !== traceReasonOf(rid)) h.set("x-request-id", withTraceReason(rid, reason));
  return { reason, traced: reason === "Sampling" || reason === "ServiceForced" || reason === "ClientForced" };
}
