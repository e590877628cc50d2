import { assert, assertEquals } from "../../tests/assert.ts";
import { HeaderMap } from "../api/headers.ts";
import {
  extractContext,
  formatTraceparent,
  injectContext,
  parseB3Single,
  parseTraceparent,
  randomHexId,
} from "./propagation.ts";

const TID = "4bf92f3577b34da6a3ce929d0e0e4736";
const SID = "00f067aa0ba902b7";

Deno.test("parseTraceparent accepts version 00 and reads the sampled flag", () => {
  assertEquals(parseTraceparent(`00-${TID}-${SID}-01`), { traceId: TID, spanId: SID, sampled: true });
  assertEquals(parseTraceparent(`00-${TID}-${SID}-00`)?.sampled, false);
  // Other flag bits do not make it sampled.
  assertEquals(parseTraceparent(`00-${TID}-${SID}-02`)?.sampled, false);
  // A later version may carry more fields.
  assertEquals(parseTraceparent(`01-${TID}-${SID}-01-extra`)?.traceId, TID);
});

Deno.test("parseTraceparent rejects malformed values", () => {
  for (
    const bad of [
      "",
      `00-${TID}-${SID}`,
      `00-${TID}-${SID}-01-extra`, // version 00 has exactly four fields
      `ff-${TID}-${SID}-01`, // version ff is invalid
      `00-${"0".repeat(32)}-${SID}-01`, // all-zero trace id
      `00-${TID}-${"0".repeat(16)}-01`, // all-zero span id
      `00-${TID.toUpperCase()}-${SID}-01`, // upper-case hex
      `00-${TID}-${SID}-0g`,
      `00_${TID}-${SID}-01`,
      `00-${TID.slice(1)}-${SID}-01`,
    ]
  ) assertEquals(parseTraceparent(bad), undefined, bad);
});

Deno.test("extractContext prefers traceparent, keeps tracestate, ignores duplicates and garbage", () => {
  const h = HeaderMap.from([["traceparent", `00-${TID}-${SID}-01`], ["tracestate", "a=1"], ["tracestate", "b=2"], [
    "x-b3-traceid",
    "80f198ee56343ba864fe8b2a57d3eff7",
  ], ["x-b3-spanid", "e457b5a2e4d86bd1"]]);
  const c = extractContext(h)!;
  assertEquals(c.format, "w3c");
  assertEquals(c.traceId, TID);
  assertEquals(c.traceState, "a=1,b=2");
  // Two traceparent headers: invalid, so B3 is used.
  h.add("traceparent", `00-${TID}-${SID}-01`);
  assertEquals(extractContext(h)!.format, "b3");
  assertEquals(extractContext(HeaderMap.from([["traceparent", "garbage"]])), undefined);
  assertEquals(extractContext(new HeaderMap()), undefined);
});

Deno.test("extractContext reads B3 multi-header: sampled, flags (debug) and 64-bit ids", () => {
  const c = extractContext(
    HeaderMap.from([["x-b3-traceid", "463ac35c9f6413ad"], ["x-b3-spanid", "A2FB4A1D1A96D312"]]),
  )!;
  assertEquals(c.traceId, "0000000000000000463ac35c9f6413ad");
  assertEquals(c.spanId, "a2fb4a1d1a96d312");
  assertEquals(c.sampled, undefined); // no decision: ours applies
  const d = extractContext(
    HeaderMap.from([["x-b3-traceid", "463ac35c9f6413ad"], ["x-b3-spanid", SID], ["x-b3-flags", "1"], [
      "x-b3-sampled",
      "0",
    ]]),
  )!;
  assertEquals(d.sampled, true); // debug wins
  assertEquals(
    extractContext(
      HeaderMap.from([["x-b3-traceid", "463ac35c9f6413ad"], ["x-b3-spanid", SID], ["x-b3-sampled", "false"]]),
    )!
      .sampled,
    false,
  );
  assertEquals(extractContext(HeaderMap.from([["x-b3-traceid", "xyz"], ["x-b3-spanid", SID]])), undefined);
  assertEquals(extractContext(HeaderMap.from([["x-b3-traceid", "463ac35c9f6413ad"]])), undefined);
});

Deno.test("parseB3Single reads every form and rejects the malformed", () => {
  assertEquals(parseB3Single(`${TID}-${SID}`), {
    traceId: TID,
    spanId: SID,
    sampled: undefined,
    short: false,
    parentSpanId: "",
  });
  assertEquals(parseB3Single(`${TID}-${SID}-1`)?.sampled, true);
  assertEquals(parseB3Single(`${TID}-${SID}-d`)?.sampled, true);
  assertEquals(parseB3Single(`${TID}-${SID}-0-e457b5a2e4d86bd1`)?.sampled, false);
  assertEquals(parseB3Single("463ac35c9f6413ad-a2fb4a1d1a96d312-1")?.short, true);
  for (const bad of ["0", "1", "d", `${TID}`, `${TID}-${SID}-x`, `${TID}-${SID}-1-zz`, `${TID}-${SID}-1-${SID}-9`]) {
    assertEquals(parseB3Single(bad), undefined, bad);
  }
});

Deno.test("injectContext writes traceparent and tracestate, and B3 only where the request has B3", () => {
  const c = { traceId: TID, spanId: "1111111111111111", parentSpanId: SID, sampled: true, traceState: "v=1" };
  const h = new HeaderMap();
  injectContext(h, c);
  assertEquals(h.get("traceparent"), `00-${TID}-1111111111111111-01`);
  assertEquals(h.get("tracestate"), "v=1");
  assertEquals(h.has("x-b3-traceid"), false);
  assertEquals(h.has("b3"), false);

  const m = HeaderMap.from([["x-b3-traceid", TID], ["x-b3-spanid", SID], ["x-b3-flags", "1"]]);
  injectContext(m, { ...c, sampled: false });
  assertEquals(m.get("x-b3-spanid"), "1111111111111111");
  assertEquals(m.get("x-b3-parentspanid"), SID);
  assertEquals(m.get("x-b3-sampled"), "0");
  assertEquals(m.has("x-b3-flags"), false);
  assertEquals(m.get("traceparent"), `00-${TID}-1111111111111111-00`);

  const short = { ...c, traceId: "0000000000000000463ac35c9f6413ad" };
  const s = HeaderMap.from([["b3", "463ac35c9f6413ad-a2fb4a1d1a96d312-1"]]);
  injectContext(s, short);
  assertEquals(s.get("b3"), `463ac35c9f6413ad-1111111111111111-1-${SID}`);
  // A root span has no parent in B3.
  const r = HeaderMap.from([["b3", "1"], ["x-b3-sampled", "1"]]);
  injectContext(r, { ...c, parentSpanId: "" });
  assertEquals(r.get("b3"), `${TID}-1111111111111111-1`);
  assertEquals(r.has("x-b3-parentspanid"), false);
});

Deno.test("formatTraceparent and randomHexId produce valid ids", () => {
  for (let i = 0; i < 100; i++) {
    const t = randomHexId(16);
    const s = randomHexId(8);
    const p = parseTraceparent(
      formatTraceparent({ traceId: t, spanId: s, parentSpanId: "", sampled: true, traceState: "" }),
    );
    assert(p !== undefined);
    assertEquals(p.traceId, t);
    assertEquals(p.spanId, s);
  }
});
