/**
 * The grpc_web filter through the filter manager: a recording owner that answers local replies as the connection
 * manager does (`httpLocalReply` over the current request headers), the filter, and a scripted upstream in place of
 * the router.
 */
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { TestStats } from "../../tests/fakes/stats.ts";
import { ConfigError } from "../../lib/api/errors.ts";
import { HeaderMap } from "../../lib/api/headers.ts";
import type {
  FilterFactoryContext,
  StreamFilterCallbacks,
  StreamFilterFactoryCb,
} from "../../lib/api/stream_filter.ts";
import { newStreamInfo, type StreamInfo } from "../../lib/api/stream_info.ts";
import type { Cluster, ClusterManager } from "../../lib/api/upstream.ts";
import { FilterManager, type FilterManagerCallbacks } from "../../lib/stream/filter_manager.ts";
import { httpLocalReply } from "../../lib/stream/local_reply.ts";
import { base64Encode, GRPC_WEB_TYPE, grpcWebFilterFactory } from "./grpc_web.ts";
import { builtinHttpFilters } from "./mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** One gRPC frame: flag 0, big-endian length, payload. */
function grpcFrame(payload: string | Uint8Array, flag = 0): Uint8Array {
  const p = typeof payload === "string" ? enc.encode(payload) : payload;
  const f = new Uint8Array(5 + p.length);
  f[0] = flag;
  new DataView(f.buffer).setUint32(1, p.length);
  f.set(p, 5);
  return f;
}

function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function b64(bytes: Uint8Array): string {
  return dec.decode(base64Encode(bytes));
}

function unb64(text: string): Uint8Array {
  // Per-frame padded blocks: decode them one 4-character group at a time.
  const parts: Uint8Array[] = [];
  for (let i = 0; i < text.length; i += 4) {
    parts.push(Uint8Array.from(atob(text.slice(i, i + 4)), (c) => c.charCodeAt(0)));
  }
  return cat(...parts);
}

type Out =
  | { k: "h"; h: Record<string, string>; end: boolean }
  | { k: "d"; d: Uint8Array; end: boolean }
  | { k: "t"; h: Record<string, string> };

/** The connection manager's part: local replies in HTTP's mapping, and what reached the codec. */
class Owner implements FilterManagerCallbacks {
  readonly streamInfo: StreamInfo = newStreamInfo("1.2.3.4:5", "127.0.0.1:80", { connectionId: 1, startMono: 0 });
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
  readonly out: Out[] = [];
  readonly errors: string[] = [];
  fm!: FilterManager;
  clearRouteCache(): void {}
  sendLocalReply(status: number, body = "", options: { details?: string } = {}): void {
    if (options.details) this.streamInfo.responseCodeDetails = options.details;
    this.fm.stopDecoding();
    const r = httpLocalReply({ status, body }, this.requestHeaders);
    this.fm.encodeLocalHeaders(r.headers, r.body === undefined && r.trailers === undefined);
    if (r.body !== undefined) this.fm.encodeLocalData(r.body, r.trailers === undefined);
    if (r.trailers !== undefined) this.fm.encodeLocalTrailers(r.trailers);
  }
  encode1xxHeaders(): void {}
  resetStream(): void {}
  readDisable(): void {}
  addDownstreamWatermarkCallbacks(): void {}
  setStreamIdleTimeout(): void {}
  encodeHeaders(h: HeaderMap, end: boolean): void {
    this.out.push({ k: "h", h: h.toObject(), end });
  }
  encodeData(d: Uint8Array, end: boolean): void {
    this.out.push({ k: "d", d: d.slice(), end });
  }
  encodeTrailers(h: HeaderMap): void {
    this.out.push({ k: "t", h: h.toObject() });
  }
  onFilterError(name: string, e: unknown): void {
    this.errors.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
  }

  /** Every response body byte, in order. */
  body(): Uint8Array {
    return cat(...this.out.flatMap((o) => o.k === "d" ? [o.d] : []));
  }
}

/** A fake router: records the request as it arrives and, at its end, runs `respond`. */
class Upstream {
  headers: Record<string, string> | undefined;
  readonly chunks: Uint8Array[] = [];
  ended = false;
  cb!: StreamFilterCallbacks;
  constructor(readonly respond: (cb: StreamFilterCallbacks) => void) {}

  factory(): StreamFilterFactoryCb {
    return {
      name: "router",
      create: (cb) => {
        this.cb = cb;
        const end = () => {
          this.ended = true;
          this.respond(cb);
        };
        return {
          decodeHeaders: (h, e) => {
            this.headers = h.toObject();
            if (e) end();
            return "stop";
          },
          decodeData: (d, e) => {
            this.chunks.push(d.slice());
            if (e) end();
            return "stop";
          },
        };
      },
    };
  }

  body(): Uint8Array {
    return cat(...this.chunks);
  }
}

/** A gRPC answer: headers, the given frames (each its own chunk), then trailers. */
function grpcAnswer(frames: Uint8Array[], trailers: string[] = ["grpc-status", "0"]) {
  return (cb: StreamFilterCallbacks) => {
    cb.encodeHeaders(new HeaderMap([":status", "200", "content-type", "application/grpc"]), false);
    for (const f of frames) cb.encodeData(f, false);
    cb.encodeTrailers(new HeaderMap(trailers));
  };
}

interface Setup {
  clusterManager?: ClusterManager;
}

function setup(up: Upstream, opts: Setup = {}): { owner: Owner; fm: FilterManager } {
  const owner = new Owner();
  const context: FilterFactoryContext = {
    scope: new TestStats(),
    clusterManager: opts.clusterManager ?? { get: () => undefined, clusters: new Map() },
  };
  const config = grpcWebFilterFactory.parseConfig({ "@type": GRPC_WEB_TYPE }, "f");
  const fm = new FilterManager(owner, [
    { name: "envoy.filters.http.grpc_web", create: grpcWebFilterFactory.createFactory!(config, context) },
    up.factory(),
  ]);
  owner.fm = fm;
  return { owner, fm };
}

function request(ct: string, extra: string[] = []): HeaderMap {
  return new HeaderMap([
    ":method",
    "POST",
    ":path",
    "/helloworld.Greeter/SayHello",
    ":authority",
    "svc",
    "content-type",
    ct,
    ...extra,
  ]);
}

/** Sends a request through the filter manager as the codec would. */
function send(fm: FilterManager, owner: Owner, h: HeaderMap, chunks: Uint8Array[]): void {
  owner.requestHeaders = h;
  fm.decodeHeaders(h, chunks.length === 0);
  chunks.forEach((c, i) => fm.decodeData(c, i === chunks.length - 1));
}

const trailerFrame = (lines: string) => grpcFrame(lines, 0x80);

Deno.test("grpcWebFilterFactory parses the empty GrpcWeb message and rejects unknown fields with their path", () => {
  assertEquals(grpcWebFilterFactory.parseConfig({ "@type": GRPC_WEB_TYPE }, "x"), {});
  const e = assertThrows(() => grpcWebFilterFactory.parseConfig({ cors: true }, "hf[0].typed_config"), ConfigError);
  assert(e.message.includes("hf[0].typed_config.cors"), e.message);
  assertEquals(grpcWebFilterFactory.configTypes, [GRPC_WEB_TYPE]);
  assert(builtinHttpFilters.some((f) => f.name === "envoy.filters.http.grpc_web"));
});

Deno.test("GrpcWebFilter leaves requests that are not gRPC-Web untouched", () => {
  for (const ct of ["application/json", "application/grpc", "application/grpc-web; charset=utf-8"]) {
    const up = new Upstream((cb) => {
      cb.encodeHeaders(new HeaderMap([":status", "200", "content-type", "text/plain"]), false);
      cb.encodeData(enc.encode("hi"), false);
      cb.encodeTrailers(new HeaderMap(["x-t", "1"]));
    });
    const { owner, fm } = setup(up);
    send(fm, owner, request(ct, ["content-length", "3"]), [enc.encode("abc")]);
    assertEquals(up.headers!["content-type"], ct);
    assertEquals(up.headers!["content-length"], "3");
    assertEquals(up.headers!["te"], undefined);
    assertEquals(dec.decode(up.body()), "abc");
    assertEquals(owner.out.map((o) => o.k), ["h", "d", "t"]);
    assertEquals((owner.out[0] as { h: Record<string, string> }).h["content-type"], "text/plain");
  }
});

Deno.test("GrpcWebFilter turns a binary gRPC-Web call into gRPC and the trailers into a trailer frame", () => {
  const msg = grpcFrame("\x0a\x05world");
  const reply = grpcFrame("\x0a\x0bHello world");
  const up = new Upstream(grpcAnswer([reply], ["grpc-status", "0", "grpc-message", "", "x-extra", "a b"]));
  const { owner, fm } = setup(up);
  send(
    fm,
    owner,
    request("application/grpc-web+proto", ["content-length", String(msg.length), "x-grpc-web", "1"]),
    [msg],
  );
  assertEquals(up.headers!["content-type"], "application/grpc");
  assertEquals(up.headers!["te"], "trailers");
  assertEquals(up.headers!["grpc-accept-encoding"], "identity,deflate,gzip");
  assertEquals(up.headers!["content-length"], undefined);
  assertEquals(up.body(), msg);
  assert(up.ended);
  const h = owner.out[0]!;
  assert(h.k === "h" && !h.end);
  assertEquals(h.h["content-type"], "application/grpc-web+proto");
  assertEquals(h.h[":status"], "200");
  assertEquals(owner.out.filter((o) => o.k === "t").length, 0);
  const last = owner.out.at(-1)!;
  assert(last.k === "d" && last.end);
  assertEquals(owner.body(), cat(reply, trailerFrame("grpc-status:0\r\ngrpc-message:\r\nx-extra:a b\r\n")));
  assertEquals(owner.errors, []);
});

Deno.test("GrpcWebFilter keeps a client's grpc-accept-encoding and accepts application/grpc-web", () => {
  const up = new Upstream(grpcAnswer([]));
  const { owner, fm } = setup(up);
  send(fm, owner, request("application/grpc-web", ["grpc-accept-encoding", "identity"]), [grpcFrame("")]);
  assertEquals(up.headers!["grpc-accept-encoding"], "identity");
  assertEquals(owner.body(), trailerFrame("grpc-status:0\r\n"));
});

Deno.test("GrpcWebFilter base64-encodes each whole response frame for a client that accepts grpc-web-text", () => {
  const f1 = grpcFrame("first message");
  const f2 = grpcFrame("2nd");
  const body = cat(f1, f2);
  // The upstream's chunks cut frames anywhere: 3 bytes at a time.
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < body.length; i += 3) chunks.push(body.subarray(i, i + 3));
  const up = new Upstream(grpcAnswer(chunks, ["grpc-status", "0"]));
  const { owner, fm } = setup(up);
  send(fm, owner, request("application/grpc-web+proto", ["accept", "application/grpc-web-text"]), [grpcFrame("q")]);
  const h = owner.out[0]!;
  assert(h.k === "h");
  assertEquals(h.h["content-type"], "application/grpc-web-text+proto");
  // One base64 block per frame, each padded: a client can decode each as soon as it arrives.
  const datas = owner.out.flatMap((o) => o.k === "d" ? [dec.decode(o.d)] : []);
  assertEquals(datas.join(""), b64(f1) + b64(f2) + b64(trailerFrame("grpc-status:0\r\n")));
  assert(datas.every((d) => d.length % 4 === 0));
  assertEquals(unb64(datas.join("")), cat(f1, f2, trailerFrame("grpc-status:0\r\n")));
  assert(owner.out.at(-1)!.k === "d" && (owner.out.at(-1) as { end: boolean }).end);
});

Deno.test("GrpcWebFilter passes a trailers-only response with its status in the headers", () => {
  const up = new Upstream((cb) => {
    cb.encodeHeaders(
      new HeaderMap([
        ":status",
        "200",
        "content-type",
        "application/grpc",
        "grpc-status",
        "14",
        "grpc-message",
        "no healthy upstream",
      ]),
      true,
    );
  });
  const { owner, fm } = setup(up);
  send(fm, owner, request("application/grpc-web+proto"), [grpcFrame("q")]);
  assertEquals(owner.out.length, 1);
  const h = owner.out[0]!;
  assert(h.k === "h" && h.end);
  assertEquals(h.h["grpc-status"], "14");
  assertEquals(h.h["grpc-message"], "no healthy upstream");
  assertEquals(h.h["content-type"], "application/grpc-web+proto");
});

Deno.test("GrpcWebFilter turns a non-gRPC response into a gRPC status with the body as grpc-message", () => {
  const up = new Upstream((cb) => {
    cb.encodeHeaders(new HeaderMap([":status", "503", "content-type", "text/plain", "content-length", "22"]), false);
    cb.encodeData(enc.encode("upstream 100% "), false);
    cb.encodeData(enc.encode("gone\n\u00e9"), true);
  });
  const { owner, fm } = setup(up);
  send(fm, owner, request("application/grpc-web-text", ["accept", "application/grpc-web-text"]), []);
  assertEquals(owner.out.length, 1);
  const h = owner.out[0]!;
  assert(h.k === "h" && h.end);
  assertEquals(h.h[":status"], "503");
  assertEquals(h.h["grpc-status"], "14");
  assertEquals(h.h["grpc-message"], "upstream 100%25 gone%0A%C3%A9");
  assertEquals(h.h["content-length"], "0");
  assertEquals(h.h["content-type"], "application/grpc-web-text+proto");
});

Deno.test("GrpcWebFilter keeps only the first 16 KiB of a non-gRPC body for grpc-message", () => {
  const up = new Upstream((cb) => {
    cb.encodeHeaders(new HeaderMap([":status", "502"]), false);
    for (let i = 0; i < 5; i++) cb.encodeData(enc.encode("x".repeat(5000)), false);
    cb.encodeTrailers(new HeaderMap(["x-t", "1"]));
  });
  const { owner, fm } = setup(up);
  send(fm, owner, request("application/grpc-web"), [grpcFrame("q")]);
  assertEquals(owner.out.length, 1);
  const h = owner.out[0]!;
  assert(h.k === "h" && h.end);
  assertEquals(h.h["grpc-message"]!.length, 16384);
  assertEquals(h.h["grpc-status"], "14");
});

Deno.test("GrpcWebFilter decodes a grpc-web-text body split at any byte, padding included", () => {
  const m1 = grpcFrame("\x0a\x05world");
  const m2 = grpcFrame("another message of some length");
  // Two separately encoded (padded) messages, as browser clients send them.
  const text = enc.encode(b64(m1) + b64(m2));
  for (const size of [1, 2, 3, 5, 7, 4, text.length]) {
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < text.length; i += size) chunks.push(text.subarray(i, i + size));
    const up = new Upstream(grpcAnswer([grpcFrame("ok")]));
    const { owner, fm } = setup(up);
    send(fm, owner, request("application/grpc-web-text", ["content-length", String(text.length)]), chunks);
    assertEquals(up.headers!["content-type"], "application/grpc", `size ${size}`);
    assertEquals(up.headers!["content-length"], undefined);
    assertEquals(up.body(), cat(m1, m2), `size ${size}`);
    assert(up.ended, `size ${size}`);
    const h = owner.out[0]!;
    assert(h.k === "h");
    assertEquals(h.h["content-type"], "application/grpc-web+proto");
    assertEquals(owner.body(), cat(grpcFrame("ok"), trailerFrame("grpc-status:0\r\n")));
  }
});

Deno.test("GrpcWebFilter answers invalid base64 with Envoy's 400, carried as grpc-status 13", () => {
  for (
    const [body, details] of [
      ["AAAA!AAA", "grpc_base_64_decode_failed"],
      ["AA=A", "grpc_base_64_decode_failed"],
      ["AAAAAA", "grpc_base_64_decode_failed_bad_size"],
    ] as const
  ) {
    const up = new Upstream(grpcAnswer([]));
    const { owner, fm } = setup(up);
    send(fm, owner, request("application/grpc-web-text+proto", ["accept", "application/grpc-web-text+proto"]), [
      enc.encode(body.slice(0, 3)),
      enc.encode(body.slice(3)),
    ]);
    assert(!up.ended, body);
    assertEquals(owner.streamInfo.responseCodeDetails, details);
    assertEquals(owner.out.length, 1, body);
    const h = owner.out[0]!;
    assert(h.k === "h" && h.end);
    assertEquals(h.h[":status"], "400");
    assertEquals(h.h["grpc-status"], "13");
    assertEquals(h.h["grpc-message"], "Bad gRPC-web request, invalid base64 data.");
    assertEquals(h.h["content-type"], "application/grpc-web-text+proto");
  }
});

Deno.test("GrpcWebFilter counts cluster.<name>.grpc-web.<service>.<method> stats by grpc-status", () => {
  const stats = new TestStats();
  const cluster = { info: { scope: stats.scope("cluster.svc") } } as unknown as Cluster;
  const cm: ClusterManager = { get: (n) => n === "svc" ? cluster : undefined, clusters: new Map() };
  for (const status of ["0", "0", "5"]) {
    const up = new Upstream((cb) => {
      cb.streamInfo.upstreamCluster = "svc";
      grpcAnswer([grpcFrame("r")], ["grpc-status", status])(cb);
    });
    const { owner, fm } = setup(up, { clusterManager: cm });
    send(fm, owner, request("application/grpc-web+proto"), [grpcFrame("q")]);
  }
  const up = new Upstream((cb) => {
    cb.streamInfo.upstreamCluster = "svc";
    cb.encodeHeaders(new HeaderMap([":status", "200", "grpc-status", "14"]), true);
  });
  const { owner, fm } = setup(up, { clusterManager: cm });
  send(fm, owner, request("application/grpc-web+proto"), [grpcFrame("q")]);
  const p = "cluster.svc.grpc-web.helloworld.Greeter.SayHello";
  assertEquals(stats.get(`${p}.total`), 4);
  assertEquals(stats.get(`${p}.success`), 2);
  assertEquals(stats.get(`${p}.failure`), 2);
  assertEquals(stats.get(`${p}.0`), 2);
  assertEquals(stats.get(`${p}.5`), 1);
  assertEquals(stats.get(`${p}.14`), 1);
});
