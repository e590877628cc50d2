import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { CodecError } from "../../lib/api/errors.ts";
import { createDubboCodecFactory } from "./codec.ts";
import { decodeInvocation, DubboFrameDecoder } from "./decoder.ts";
import { Hessian2Reader } from "./hessian2.ts";
import { mutateBytes } from "../../tests/helpers/fuzz.ts";

const dir = new URL("./testdata/", import.meta.url);
const CAPTURES = [
  "sofa_echo_requests.bin",
  "sofa_boom_request.bin",
  "dubbo2js_echo_requests.bin",
  "sofa_heartbeat_and_ack.bin",
].map((n) => Deno.readFileSync(new URL(n, dir)));

/** xorshift32: the same sequence on every run. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

/** Bytes of the Dubbo magic and of Hessian2 type codes, one of which a mutation may insert. */
const MARKERS = [0xda, 0xbb, 0x4e, 0x5a, 0x48, 0x43, 0x52, 0x79];

/** 1 to 4 random edits of `src`, inserting Dubbo and Hessian2 markers among them. */
function mutate(src: Uint8Array, rnd: () => number): Uint8Array {
  return mutateBytes(src, rnd, (r) => [MARKERS[Math.floor(r() * 8)]!]);
}

/** Feeds `input` in random pieces; returns the streams' paths and bodies, the bytes written and the error. */
function run(input: Uint8Array, rnd: () => number) {
  const out: number[] = [];
  const streams: string[] = [];
  const codec = createDubboCodecFactory({ maxBodyBytes: 1 << 16 }).createServer((b) => out.push(...b), {
    newStream() {
      let path = "";
      return {
        decodeHeaders(h) {
          path = h.get(":path") ?? "";
        },
        decodeData(d) {
          streams.push(`${path} ${d.length}`);
        },
        decodeTrailers() {},
      };
    },
  });
  let error: unknown;
  let p = 0;
  try {
    while (p < input.length) {
      const n = 1 + Math.floor(rnd() * 64);
      codec.dispatch(input.subarray(p, p + n));
      p += n;
    }
  } catch (e) {
    error = e;
  }
  return { streams, out, error };
}

Deno.test("DubboServerCodec gives the same streams and answers for any split of valid input", () => {
  const rnd = prng(7);
  for (const c of CAPTURES) {
    const whole = run(c, () => 0.9999);
    assertEquals(whole.error, undefined);
    for (let i = 0; i < 50; i++) {
      const r = run(c, rnd);
      assertEquals(r.error, undefined);
      assertEquals(r.streams, whole.streams);
      assertEquals(r.out, whole.out);
    }
  }
});

Deno.test("DubboServerCodec on 20,000 mutated inputs throws nothing but CodecError", () => {
  const rnd = prng(20261206);
  let errors = 0;
  let streams = 0;
  for (let i = 0; i < 20_000; i++) {
    const src = CAPTURES[i % CAPTURES.length]!;
    const r = run(mutate(src, rnd), rnd);
    if (r.error !== undefined) {
      assert(r.error instanceof CodecError, `input ${i}: ${r.error}`);
      errors++;
    }
    streams += r.streams.length;
    // Every answer the codec wrote itself is a well-formed frame.
    new DubboFrameDecoder().feed(new Uint8Array(r.out), () => {});
  }
  // Both outcomes occur: the mutations reach past the header checks.
  assert(errors > 100 && streams > 1000, `errors ${errors}, streams ${streams}`);
});

Deno.test("decodeInvocation and Hessian2Reader on random bytes throw nothing but CodecError", () => {
  const rnd = prng(99);
  for (let i = 0; i < 20_000; i++) {
    const n = Math.floor(rnd() * 64);
    const b = new Uint8Array(n);
    for (let k = 0; k < n; k++) b[k] = Math.floor(rnd() * 256);
    for (const f of [() => decodeInvocation(b), () => new Hessian2Reader(b).skipValue()]) {
      try {
        f();
      } catch (e) {
        assert(e instanceof CodecError, `input ${Array.from(b)}: ${e}`);
      }
    }
  }
});
