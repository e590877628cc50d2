/**
 * The filter manager's status protocol on its own, without a codec or a connection: a recording owner and
 * scripted filters. Each test names the rule of `lib/api/stream_filter.ts` it checks.
 */
import { assert, assertEquals } from "../../tests/assert.ts";
import { HeaderMap } from "../api/headers.ts";
import type { FilterResult, StreamFilter, StreamFilterCallbacks, StreamFilterFactoryCb } from "../api/stream_filter.ts";
import { newStreamInfo } from "../api/stream_info.ts";
import { FilterManager, type FilterManagerCallbacks } from "./filter_manager.ts";

const text = new TextDecoder();
const bytes = (s: string) => new TextEncoder().encode(s);

/** A recording owner: what reached the codec, and which filters failed. */
class Owner implements FilterManagerCallbacks {
  readonly streamInfo = newStreamInfo("1.2.3.4:5", "127.0.0.1:80", { connectionId: 1, startMono: 0 });
  readonly connection = {
    id: 1,
    remoteAddress: "1.2.3.4",
    remotePort: 5,
    localAddress: "127.0.0.1",
    localPort: 80,
    secure: false,
  };
  requestHeaders: HeaderMap | undefined;
  readonly route = null;
  readonly decoderBufferLimit = 1 << 20;
  readonly out: string[] = [];
  readonly errors: string[] = [];
  localReplies: number[] = [];
  resets = 0;
  clearRouteCache(): void {}
  sendLocalReply(status: number): void {
    this.localReplies.push(status);
  }
  encode1xxHeaders(): void {}
  resetStream(): void {
    this.resets++;
  }
  readDisable(): void {}
  addDownstreamWatermarkCallbacks(): void {}
  setStreamIdleTimeout(): void {}
  encodeHeaders(h: HeaderMap, end: boolean): void {
    this.out.push(`H${h.get(":status")}${end ? "!" : ""}`);
  }
  encodeData(d: Uint8Array, end: boolean): void {
    this.out.push(`D${text.decode(d)}${end ? "!" : ""}`);
  }
  encodeTrailers(): void {
    this.out.push("T");
  }
  onFilterError(name: string, e: unknown): void {
    this.errors.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

type Hook = (frame: string, cb: StreamFilterCallbacks) => FilterResult | undefined;

/**
 * A filter that logs every hook call as `<name>:<frame>` into `log` and returns what `script` says (default
 * "continue").
 */
function scripted(name: string, log: string[], script: Hook = () => undefined): StreamFilterFactoryCb & {
  cb?: StreamFilterCallbacks;
} {
  const fac: StreamFilterFactoryCb & { cb?: StreamFilterCallbacks } = {
    name,
    create(cb): StreamFilter {
      fac.cb = cb;
      const hook = (frame: string): FilterResult => {
        log.push(`${name}:${frame}`);
        return script(frame, cb) ?? "continue";
      };
      return {
        decodeHeaders: (_h, end) => hook(`dh${end ? "!" : ""}`),
        decodeData: (d, end) => hook(`dd${text.decode(d)}${end ? "!" : ""}`),
        decodeTrailers: () => hook("dt"),
        encodeHeaders: (h, end) => hook(`eh${h.get(":status")}${end ? "!" : ""}`),
        encodeData: (d, end) => hook(`ed${text.decode(d)}${end ? "!" : ""}`),
        encodeTrailers: () => hook("et"),
        onDestroy: () => void log.push(`${name}:destroy`),
      };
    },
  };
  return fac;
}

/** A terminal filter that records what it decodes and answers with 200 + "ok" at end of request. */
function terminal(log: string[]): StreamFilterFactoryCb & { cb?: StreamFilterCallbacks } {
  return scripted("router", log, (frame, cb) => {
    if (frame.endsWith("!") || frame === "dt") {
      cb.encodeHeaders(new HeaderMap([":status", "200"]), false);
      cb.encodeData(bytes("ok"), true);
    }
    return "stop";
  });
}

const req = () => new HeaderMap([":method", "GET", ":path", "/"]);

Deno.test("FilterManager runs decoder filters in order and encoder filters in reverse", () => {
  const log: string[] = [];
  const owner = new Owner();
  const fm = new FilterManager(owner, [scripted("a", log), scripted("b", log), terminal(log)]);
  fm.decodeHeaders(req(), false);
  fm.decodeData(bytes("x"), true);
  assertEquals(log, [
    "a:dh",
    "b:dh",
    "router:dh",
    "a:ddx!",
    "b:ddx!",
    "router:ddx!",
    "b:eh200",
    "a:eh200",
    "b:edok!",
    "a:edok!",
  ]);
  assertEquals(owner.out, ["H200", "Dok!"]);
  assert(fm.responseStarted);
});

Deno.test("FilterManager stop holds a frame and every later frame until continueDecoding", () => {
  const log: string[] = [];
  const owner = new Owner();
  const a = scripted("a", log, (f) => f === "dh" ? "stop" : undefined);
  const fm = new FilterManager(owner, [a, scripted("b", log), terminal(log)]);
  fm.decodeHeaders(req(), false);
  fm.decodeData(bytes("x"), false);
  fm.decodeTrailers(new HeaderMap());
  // a sees every frame as it arrives; b sees nothing while a holds.
  assertEquals(log, ["a:dh", "a:ddx", "a:dt"]);
  a.cb!.continueDecoding();
  assertEquals(log.slice(3), [
    "b:dh",
    "router:dh",
    "b:ddx",
    "router:ddx",
    "b:dt",
    "router:dt",
    "b:eh200",
    "a:eh200",
    "b:edok!",
    "a:edok!",
  ]);
  assertEquals(owner.out, ["H200", "Dok!"]);
});

Deno.test("FilterManager copies held data: the caller may reuse its buffer after the call", () => {
  const log: string[] = [];
  const a = scripted("a", log, (f) => f === "dh" ? "stop" : undefined);
  const fm = new FilterManager(new Owner(), [a, terminal(log)]);
  fm.decodeHeaders(req(), false);
  const buf = bytes("abc");
  fm.decodeData(buf, true);
  buf.fill(0x7a); // the read buffer is reused for the next chunk
  a.cb!.continueDecoding();
  assert(log.includes("router:ddabc!"), log.join(" "));
});

Deno.test("FilterManager stop-and-buffer keeps the body and passes it on as one chunk when the filter continues", () => {
  const log: string[] = [];
  const owner = new Owner();
  const a = scripted("a", log, (f, cb) => {
    if (f.startsWith("dd")) {
      if (f.endsWith("!")) {
        queueMicrotask(() => cb.continueDecoding());
        return "stop";
      }
      return "stop-and-buffer";
    }
    return undefined;
  });
  const fm = new FilterManager(owner, [a, terminal(log)]);
  fm.decodeHeaders(req(), false);
  fm.decodeData(bytes("he"), false);
  fm.decodeData(bytes("ll"), false);
  fm.decodeData(bytes("o"), true);
  assertEquals(log, ["a:dh", "router:dh", "a:ddhe", "a:ddll", "a:ddo!"]);
  return Promise.resolve().then(() => {
    assertEquals(log.slice(5, 6), ["router:ddhello!"]);
    assertEquals(owner.out, ["H200", "Dok!"]);
  });
});

Deno.test("FilterManager puts a buffered body after held headers and before held trailers", () => {
  const log: string[] = [];
  const a = scripted("a", log, (f) => f === "dh" ? "stop" : f.startsWith("dd") ? "stop-and-buffer" : undefined);
  const fm = new FilterManager(new Owner(), [a, terminal(log)]);
  fm.decodeHeaders(req(), false);
  fm.decodeData(bytes("1"), false);
  fm.decodeData(bytes("2"), false);
  fm.decodeTrailers(new HeaderMap());
  a.cb!.continueDecoding();
  assertEquals(log.filter((l) => l.startsWith("router:")), ["router:dh", "router:dd12", "router:dt"]);
});

Deno.test("FilterManager treats a Promise as stop until it resolves to continue", async () => {
  const log: string[] = [];
  let release!: (s: "continue") => void;
  const a = scripted("a", log, (f) => f === "dh!" ? new Promise((r) => release = r) : undefined);
  const owner = new Owner();
  const fm = new FilterManager(owner, [a, terminal(log)]);
  fm.decodeHeaders(req(), true);
  assertEquals(log, ["a:dh!"]);
  release("continue");
  await Promise.resolve();
  await Promise.resolve();
  assertEquals(log.slice(1, 2), ["router:dh!"]);
  assertEquals(owner.out, ["H200", "Dok!"]);
});

Deno.test("FilterManager reports a throwing hook and a rejected Promise to the owner, naming the filter", async () => {
  const log: string[] = [];
  const owner = new Owner();
  const boom = scripted("boom", log, (f) => {
    if (f === "dh") throw new Error("bad header");
    return undefined;
  });
  const fm = new FilterManager(owner, [boom, terminal(log)]);
  fm.decodeHeaders(req(), false);
  assertEquals(owner.errors, ["boom: bad header"]);
  assertEquals(log, ["boom:dh"], "the failed frame goes no further");

  const owner2 = new Owner();
  const rej = scripted("slow", [], (f) => f === "dh!" ? Promise.reject(new Error("auth down")) : undefined);
  new FilterManager(owner2, [rej, terminal([])]).decodeHeaders(req(), true);
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(owner2.errors, ["slow: auth down"]);

  const owner3 = new Owner();
  const term = scripted("router", [], () => Promise.reject(new Error("upstream gone")));
  new FilterManager(owner3, [term]).decodeHeaders(req(), true);
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(owner3.errors, ["router: upstream gone"], "the terminal filter's rejection is reported too");
});

Deno.test("FilterManager holds response frames at a stopped encoder filter until continueEncoding", () => {
  const log: string[] = [];
  const owner = new Owner();
  const a = scripted("a", log, (f) => f === "eh200" ? "stop" : undefined);
  const fm = new FilterManager(owner, [a, scripted("b", log), terminal(log)]);
  fm.decodeHeaders(req(), true);
  assertEquals(owner.out, [], "nothing reaches the codec while a holds the headers");
  assert(log.includes("a:edok!"), "a still sees the data frame");
  a.cb!.continueEncoding();
  assertEquals(owner.out, ["H200", "Dok!"]);
});

Deno.test("FilterManager stopDecoding drops held and later request frames", () => {
  const log: string[] = [];
  const a = scripted("a", log, (f) => f === "dh" ? "stop" : undefined);
  const fm = new FilterManager(new Owner(), [a, terminal(log)]);
  fm.decodeHeaders(req(), false);
  fm.stopDecoding();
  fm.decodeData(bytes("x"), true);
  a.cb!.continueDecoding();
  assertEquals(log, ["a:dh"]);
  assert(fm.decodingDone);
});

Deno.test("FilterManager sends a local reply through every encoder filter from the last", () => {
  const log: string[] = [];
  const owner = new Owner();
  const fm = new FilterManager(owner, [scripted("a", log), scripted("b", log)]);
  fm.encodeLocalHeaders(new HeaderMap([":status", "503"]), false);
  fm.encodeLocalData(bytes("no"), true);
  assertEquals(log, ["b:eh503", "a:eh503", "b:edno!", "a:edno!"]);
  assertEquals(owner.out, ["H503", "Dno!"]);
});

Deno.test("FilterManager destroy calls onDestroy once per filter; nothing reaches the owner afterwards", () => {
  const log: string[] = [];
  const owner = new Owner();
  const a = scripted("a", log, (f) => f === "eh200" ? "stop" : undefined);
  const logged: string[] = [];
  const throwing: StreamFilterFactoryCb = {
    name: "t",
    create: () => ({
      onDestroy() {
        throw new Error("oops");
      },
    }),
  };
  const fm = new FilterManager(owner, [a, throwing, terminal(log)], (m) => logged.push(m));
  fm.decodeHeaders(req(), true);
  fm.destroy();
  fm.destroy();
  a.cb!.continueEncoding();
  a.cb!.sendLocalReply(500);
  a.cb!.resetStream();
  assertEquals(owner.out, []);
  assertEquals(owner.localReplies, []);
  assertEquals(owner.resets, 0);
  assertEquals(log.filter((l) => l.endsWith("destroy")), ["a:destroy", "router:destroy"]);
  assertEquals(logged, ['http filter "t" onDestroy failed: oops']);
  assert(fm.destroyed);
});

Deno.test("FilterManager stop-no-buffer: a transforming filter injects its output; nothing is held and later frames still reach it", () => {
  const owner = new Owner();
  const log: string[] = [];
  // Upper-cases request bodies, and turns response trailers into a last body chunk.
  const upper: StreamFilterFactoryCb = {
    name: "upper",
    create(cb): StreamFilter {
      return {
        decodeData(d, end) {
          cb.injectDecodedDataToFilterChain(bytes(text.decode(d).toUpperCase()), end);
          return "stop-no-buffer";
        },
        encodeData(d, end) {
          cb.injectEncodedDataToFilterChain(bytes(`<${text.decode(d)}>`), end);
          return "stop-no-buffer";
        },
        encodeTrailers() {
          cb.injectEncodedDataToFilterChain(bytes("[trailers]"), true);
          return "stop-no-buffer";
        },
      };
    },
  };
  const router = scripted("router", log);
  const fm = new FilterManager(owner, [scripted("first", log), upper, scripted("mid", log), router]);
  fm.decodeHeaders(new HeaderMap([":method", "POST"]), false);
  fm.decodeData(bytes("ab"), false);
  fm.decodeData(bytes("cd"), false);
  fm.decodeTrailers(new HeaderMap(["x", "1"]));
  assertEquals(log, [
    "first:dh",
    "mid:dh",
    "router:dh",
    "first:ddab",
    "mid:ddAB",
    "router:ddAB",
    "first:ddcd",
    "mid:ddCD",
    "router:ddCD",
    "first:dt",
    "mid:dt",
    "router:dt",
  ]);
  router.cb!.encodeHeaders(HeaderMap.from([[":status", "200"]]), false);
  router.cb!.encodeData(bytes("x"), false);
  router.cb!.encodeTrailers(new HeaderMap(["grpc-status", "0"]));
  assertEquals(owner.out, ["H200", "D<x>", "D[trailers]!"]);
  assertEquals(owner.errors, []);
});
