import { assertEquals } from "../../tests/assert.ts";
import { HeaderMap } from "../api/headers.ts";
import { decideTrace, requestIdInteger, traceReasonOf, withTraceReason } from "./sampler.ts";

const ALL = { client: 10000, random: 10000, overall: 10000 };
const RID = "0c3c8f4e-1f7a-4b2d-8e1a-2c9d5b6a7f10";

Deno.test("traceReasonOf reads the UUID's trace nibble as Envoy packs it", () => {
  assertEquals(traceReasonOf(RID), "NoTrace");
  assertEquals(traceReasonOf(withTraceReason(RID, "Sampling")), "Sampling");
  assertEquals(withTraceReason(RID, "Sampling")[14], "9");
  assertEquals(withTraceReason(RID, "ServiceForced")[14], "a");
  assertEquals(withTraceReason(RID, "ClientForced")[14], "b");
  assertEquals(withTraceReason(withTraceReason(RID, "Sampling"), "NoTrace"), RID);
  assertEquals(traceReasonOf("not-a-uuid"), "NotTraceable");
  assertEquals(traceReasonOf(undefined), "NotTraceable");
  assertEquals(withTraceReason("short", "Sampling"), "short");
});

Deno.test("requestIdInteger takes the first 8 hex digits", () => {
  assertEquals(requestIdInteger(RID), 0x0c3c8f4e);
  assertEquals(requestIdInteger("zzzzzzzz-1"), undefined);
  assertEquals(requestIdInteger("abc"), undefined);
});

Deno.test("decideTrace samples on the request id and records it", () => {
  const h = HeaderMap.from([["x-request-id", RID]]);
  assertEquals(decideTrace(h, ALL), { reason: "Sampling", traced: true });
  assertEquals(h.get("x-request-id")![14], "9");
  // 0x0c3c8f4e % 10000 = 5438: sampled at 54.39 %, not at 54.38 %.
  assertEquals(0x0c3c8f4e % 10000, 5438);
  assertEquals(decideTrace(HeaderMap.from([["x-request-id", RID]]), { ...ALL, random: 5439 }).traced, true);
  const h2 = HeaderMap.from([["x-request-id", RID]]);
  assertEquals(decideTrace(h2, { ...ALL, random: 5438 }), { reason: "NoTrace", traced: false });
  assertEquals(h2.get("x-request-id"), RID);
});

Deno.test("decideTrace keeps the decision of the hop in front, but overall_sampling can still turn it off", () => {
  const sampled = withTraceReason(RID, "Sampling");
  assertEquals(decideTrace(HeaderMap.from([["x-request-id", sampled]]), { ...ALL, random: 0 }).traced, true);
  const h = HeaderMap.from([["x-request-id", sampled]]);
  assertEquals(decideTrace(h, { ...ALL, overall: 0 }), { reason: "NoTrace", traced: false });
  assertEquals(h.get("x-request-id"), RID);
});

Deno.test("decideTrace: x-client-trace-id within client_sampling, then x-envoy-force-trace", () => {
  const c = HeaderMap.from([["x-request-id", RID], ["x-client-trace-id", "abc"], ["x-envoy-force-trace", "1"]]);
  assertEquals(decideTrace(c, { ...ALL, random: 0 }, () => 0.5).reason, "ClientForced");
  assertEquals(c.get("x-request-id")![14], "b");
  const f = HeaderMap.from([["x-request-id", RID], ["x-client-trace-id", "abc"], ["x-envoy-force-trace", "1"]]);
  assertEquals(decideTrace(f, { ...ALL, client: 0, random: 0 }, () => 0.5).reason, "ServiceForced");
  assertEquals(f.get("x-request-id")![14], "a");
});

Deno.test("decideTrace: no or non-UUID request id is not traceable", () => {
  assertEquals(decideTrace(new HeaderMap(), ALL), { reason: "NotTraceable", traced: false });
  assertEquals(decideTrace(HeaderMap.from([["x-request-id", "abc"]]), ALL), { reason: "NotTraceable", traced: false });
  assertEquals(decideTrace(HeaderMap.from([["x-request-id", "12345678-not-a-uuid"]]), ALL).traced, false);
});
