import { ok as assert } from "node:assert/strict";
import type { StreamDecoder } from "../../lib/api/codec.ts";
import { CodecError } from "../../lib/api/errors.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import { BoltClientCodec, BoltServerCodec } from "./codec.ts";
import { encodeFrame } from "./encoder.ts";
import { CMD_RESPONSE, TYPE_ONEWAY, TYPE_RESPONSE } from "./types.ts";
import type { BoltFrame } from "./types.ts";
import { BoltDecoder } from "./decoder.ts";
import { mutateBytes } from "../../tests/helpers/fuzz.ts";
import { prng } from "../../tests/helpers/http1.ts";
import { boltFrame } from "../../tests/helpers/bolt_frames.ts";

const request = boltFrame("v1_request");
const first: BoltFrame[] = [];
new BoltDecoder((f) => first.push({ ...f, content: f.content.slice() })).push(request);
const f0 = first[0]!;
const REQUESTS = [
  request,
  boltFrame("v2_crc_request"),
  boltFrame("v1_heartbeat"),
  encodeFrame({ ...f0, type: TYPE_ONEWAY, requestId: 99 }, f0.content),
  encodeFrame({ ...f0, proto: 2, ver1: 1, switchCode: 0, header: ["a", "b", "Sofa_X", ""] }, f0.content),
];
const RESPONSES = [
  encodeFrame(
    { ...f0, type: TYPE_RESPONSE, cmdCode: CMD_RESPONSE, requestId: 1, status: 0 },
    new Uint8Array([5, 104, 101, 108, 108, 111]),
  ),
  encodeFrame({ ...f0, type: TYPE_RESPONSE, cmdCode: CMD_RESPONSE, requestId: 2, status: 7, header: ["k", "v"] }, []),
  encodeFrame({
    ...f0,
    proto: 2,
    ver1: 1,
    switchCode: 1,
    type: TYPE_RESPONSE,
    cmdCode: CMD_RESPONSE,
    requestId: 1,
    status: 0,
  }, []),
];

/** 1 to 4 random edits of `src`; the inserted run is four 0xff bytes (a huge length where it lands on one). */
function mutate(src: Uint8Array, rnd: () => number): Uint8Array {
  return mutateBytes(src, rnd, () => [0xff, 0xff, 0xff, 0xff]);
}

function input(corpus: Uint8Array[], rnd: () => number): Uint8Array {
  const r = rnd();
  if (r < 0.15) {
    const b = new Uint8Array(Math.floor(rnd() * 200));
    for (let i = 0; i < b.length; i++) b[i] = Math.floor(rnd() * 256);
    if (b.length > 0 && rnd() < 0.5) b[0] = 1 + Math.floor(rnd() * 2);
    return b;
  }
  let b = corpus[Math.floor(rnd() * corpus.length)]!;
  if (rnd() < 0.3) b = new Uint8Array([...b, ...corpus[Math.floor(rnd() * corpus.length)]!]);
  return mutate(b, rnd);
}

function split(b: Uint8Array, rnd: () => number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let i = 0;
  while (i < b.length) {
    const n = 1 + Math.floor(rnd() * 40);
    out.push(b.slice(i, i + n));
    i += n;
  }
  return out;
}

function onlyCodecErrors(fn: () => void, what: Uint8Array): boolean {
  try {
    fn();
    return false;
  } catch (e) {
    if (e instanceof CodecError) return true;
    throw new Error(`non-CodecError ${e} for input ${Array.from(what).join(",")}`);
  }
}

const sink: StreamDecoder = { decodeHeaders() {}, decodeData() {}, decodeTrailers() {} };

Deno.test("BoltServerCodec fuzz: 20k random and mutated inputs throw only CodecError, lower-cased headers", () => {
  const rnd = prng(20261206);
  let errors = 0;
  let streams = 0;
  for (let n = 0; n < 20000; n++) {
    const b = input(REQUESTS, rnd);
    const seen: HeaderMap[] = [];
    const codec = new BoltServerCodec(() => {}, {
      newStream(encoder) {
        streams++;
        return {
          decodeHeaders(h) {
            seen.push(h);
            // Answer at once half the time, so ids free up and responses are encoded from whatever was decoded.
            if (rnd() < 0.5) encoder.encodeHeaders(new HeaderMap([":status", "200", ...h.kv.slice(8)]), true);
          },
          decodeData() {},
          decodeTrailers() {},
        };
      },
    }, { maxFrameBytes: 4096 });
    const parts = rnd() < 0.5 ? [b] : split(b, rnd);
    if (onlyCodecErrors(() => parts.forEach((p) => codec.dispatch(p)), b)) errors++;
    codec.onConnectionClose();
    for (const h of seen) {
      for (let i = 0; i < h.kv.length; i += 2) assert(h.kv[i] === h.kv[i]!.toLowerCase());
    }
  }
  assert(errors > 5000 && errors < 20000, `errors ${errors}`);
  assert(streams > 1000, `streams ${streams}`);
});

Deno.test("BoltClientCodec fuzz: 20k random and mutated responses throw only CodecError", () => {
  const rnd = prng(7);
  let errors = 0;
  for (let n = 0; n < 20000; n++) {
    const b = input(RESPONSES, rnd);
    const codec = new BoltClientCodec(() => {}, { maxFrameBytes: 4096 });
    for (let i = 0; i < 3; i++) {
      codec.newStream(sink).encodeHeaders(new HeaderMap([":method", "POST", "x-bolt-class", "C"]), true);
    }
    const parts = rnd() < 0.5 ? [b] : split(b, rnd);
    if (onlyCodecErrors(() => parts.forEach((p) => codec.dispatch(p)), b)) errors++;
    codec.onConnectionClose();
    assert(codec.activeStreams === 0);
  }
  assert(errors > 3000 && errors < 20000, `errors ${errors}`);
});
