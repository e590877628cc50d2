/**
 * The grpc_web filter end to end: a gRPC-Web client speaking HTTP/1.1 (`fetch`) to Ferry, which calls a real
 * `@grpc/grpc-js` server over HTTP/2 (`explicit_http_config.http2_protocol_options`), and the reply decoded from its
 * gRPC-Web frames: messages, the trailer frame, `-text` responses, errors and the per-method stats.
 */
// deno-lint-ignore no-import-prefix -- test-only peer; not in the import map
import * as grpc from "npm:@grpc/grpc-js@^1.12.0";
// deno-lint-ignore no-import-prefix -- test-only peer; not in the import map
import * as loader from "npm:@grpc/proto-loader@^0.7.13";
import { assert, assertEquals } from "../assert.ts";
import { catchAllRoute, hcmBootstrap, itOpts, startFerry, stat, staticCluster, type TestFerry } from "./_harness.ts";

const GREETER_PROTO = `syntax = "proto3";
package helloworld;
message HelloRequest { string name = 1; }
message HelloReply { string message = 1; }
service Greeter {
  rpc SayHello(HelloRequest) returns (HelloReply);
  rpc SayHellos(HelloRequest) returns (stream HelloReply);
}
`;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A protobuf message with one string field 1 (HelloRequest / HelloReply), names under 128 bytes. */
function stringMessage(s: string): Uint8Array {
  const b = enc.encode(s);
  return new Uint8Array([0x0a, b.length, ...b]);
}

function frame(msg: Uint8Array, flag = 0): Uint8Array<ArrayBuffer> {
  const f = new Uint8Array(5 + msg.length);
  f[0] = flag;
  new DataView(f.buffer).setUint32(1, msg.length);
  f.set(msg, 5);
  return f;
}

/** The frames of a gRPC-Web body: messages (flag 0) and the trailers of the trailer frame (flag 0x80). */
function parseGrpcWeb(body: Uint8Array): { messages: string[]; trailers: Record<string, string> | undefined } {
  const messages: string[] = [];
  let trailers: Record<string, string> | undefined;
  let at = 0;
  while (at < body.length) {
    const flag = body[at]!;
    const len = new DataView(body.buffer, body.byteOffset + at + 1, 4).getUint32(0);
    const payload = body.subarray(at + 5, at + 5 + len);
    assertEquals(payload.length, len, "truncated frame");
    if (flag === 0x80) {
      trailers = {};
      for (const line of dec.decode(payload).split("\r\n")) {
        if (line === "") continue;
        const c = line.indexOf(":");
        trailers[line.slice(0, c)] = line.slice(c + 1);
      }
    } else {
      assertEquals(flag, 0);
      // HelloReply: field 1, a short string.
      assertEquals(payload[0], 0x0a);
      messages.push(dec.decode(payload.subarray(2, 2 + payload[1]!)));
    }
    at += 5 + len;
  }
  return { messages, trailers };
}

/** Decodes a `-text` body: padded base64 blocks, one per frame, back to back. */
function unbase64(text: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < text.length; i += 4) for (const c of atob(text.slice(i, i + 4))) out.push(c.charCodeAt(0));
  return new Uint8Array(out);
}

/** A Greeter server: `SayHello` greets (an empty name is INVALID_ARGUMENT), `SayHellos` streams three replies. */
async function startGreeter(): Promise<{ port: number; stop(): Promise<void> }> {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/greeter.proto`, GREETER_PROTO);
  const def = loader.loadSync(`${dir}/greeter.proto`);
  // deno-lint-ignore no-explicit-any
  const greeter = (grpc.loadPackageDefinition(def) as any).helloworld.Greeter;
  const server = new grpc.Server();
  server.addService(greeter.service, {
    // deno-lint-ignore no-explicit-any
    SayHello(call: any, cb: any) {
      const name: string = call.request.name;
      if (name === "") cb({ code: grpc.status.INVALID_ARGUMENT, details: "name is required" });
      else {
        const md = new grpc.Metadata();
        md.set("x-served-by", "grpc-js");
        call.sendMetadata(md);
        cb(
          null,
          { message: `Hello ${name}` },
          (() => {
            const t = new grpc.Metadata();
            t.set("x-trailer", "t1");
            return t;
          })(),
        );
      }
    },
    // deno-lint-ignore no-explicit-any
    SayHellos(call: any) {
      for (let i = 0; i < 3; i++) call.write({ message: `Hello ${call.request.name} ${i}` });
      call.end();
    },
  });
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => e ? rej(e) : res(p))
  );
  return {
    port,
    async stop() {
      server.forceShutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function withGrpcWeb(fn: (f: TestFerry) => Promise<void>): Promise<void> {
  const up = await startGreeter();
  const f = await startFerry(hcmBootstrap({
    routes: catchAllRoute("{ cluster: greeter }"),
    clusters: staticCluster(
      "greeter",
      [up.port],
      `typed_extension_protocol_options:
  envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
    "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
    explicit_http_config:
      http2_protocol_options: {}`,
    ),
    httpFilters: `- name: envoy.filters.http.grpc_web
  typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb }`,
  }));
  try {
    await fn(f);
  } finally {
    await f.stop();
    await up.stop();
  }
}

/** A gRPC-Web call over HTTP/1.1 (Deno's fetch to an `http:` URL). */
async function call(
  f: TestFerry,
  method: string,
  name: string,
  accept = "application/grpc-web+proto",
): Promise<{ status: number; headers: Headers; body: Uint8Array }> {
  const r = await fetch(f.url(`/helloworld.Greeter/${method}`), {
    method: "POST",
    headers: { "content-type": "application/grpc-web+proto", accept, "x-grpc-web": "1" },
    body: frame(stringMessage(name)),
  });
  return { status: r.status, headers: r.headers, body: new Uint8Array(await r.arrayBuffer()) };
}

Deno.test(
  "grpc_web carries a unary gRPC-Web call to a grpc-js server and its trailers in a trailer frame",
  itOpts,
  async () => {
    await withGrpcWeb(async (f) => {
      const r = await call(f, "SayHello", "world");
      assertEquals(r.status, 200);
      assertEquals(r.headers.get("content-type"), "application/grpc-web+proto");
      assertEquals(r.headers.get("x-served-by"), "grpc-js");
      const { messages, trailers } = parseGrpcWeb(r.body);
      assertEquals(messages, ["Hello world"]);
      assert(trailers !== undefined, "no trailer frame");
      assertEquals(trailers["grpc-status"], "0");
      assertEquals(trailers["x-trailer"], "t1");
      // The trailer frame is the last thing in the body.
      assertEquals(r.body[5 + 2 + "Hello world".length], 0x80);
      assertEquals(await stat(f, "cluster.greeter.grpc-web.helloworld.Greeter.SayHello.success"), 1);
      assertEquals(await stat(f, "cluster.greeter.grpc-web.helloworld.Greeter.SayHello.total"), 1);
    });
  },
);

Deno.test("grpc_web answers a client that accepts grpc-web-text with base64 frames", itOpts, async () => {
  await withGrpcWeb(async (f) => {
    const r = await call(f, "SayHellos", "stream", "application/grpc-web-text");
    assertEquals(r.status, 200);
    assertEquals(r.headers.get("content-type"), "application/grpc-web-text+proto");
    const text = dec.decode(r.body);
    assertEquals(text.length % 4, 0);
    const { messages, trailers } = parseGrpcWeb(unbase64(text));
    assertEquals(messages, ["Hello stream 0", "Hello stream 1", "Hello stream 2"]);
    assertEquals(trailers?.["grpc-status"], "0");
  });
});

Deno.test("grpc_web passes a gRPC error status to the gRPC-Web client", itOpts, async () => {
  await withGrpcWeb(async (f) => {
    const r = await call(f, "SayHello", "");
    assertEquals(r.status, 200);
    assertEquals(r.headers.get("content-type"), "application/grpc-web+proto");
    // grpc-js answers an error without messages trailers-only: the status is in the headers, the body empty.
    const status = r.headers.get("grpc-status") ?? parseGrpcWeb(r.body).trailers?.["grpc-status"];
    assertEquals(status, "3");
    const message = r.headers.get("grpc-message") ?? parseGrpcWeb(r.body).trailers?.["grpc-message"];
    // grpc-js percent-encodes it (spaces included), which the spec allows.
    assertEquals(decodeURIComponent(message ?? ""), "name is required");
    assertEquals(await stat(f, "cluster.greeter.grpc-web.helloworld.Greeter.SayHello.failure"), 1);
  });
});

Deno.test("grpc_web leaves plain HTTP/1.1 requests alone", itOpts, async () => {
  await withGrpcWeb(async (f) => {
    // Not gRPC-Web: forwarded as is, and grpc-js refuses a non-gRPC content type.
    const r = await fetch(f.url("/helloworld.Greeter/SayHello"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    await r.arrayBuffer();
    assert(r.headers.get("content-type") !== "application/grpc-web+proto");
  });
});

Deno.test("grpc_web decodes a grpc-web-text request and answers in text", itOpts, async () => {
  await withGrpcWeb(async (f) => {
    const body = btoa(String.fromCharCode(...frame(stringMessage("text"))));
    const r = await fetch(f.url("/helloworld.Greeter/SayHello"), {
      method: "POST",
      headers: { "content-type": "application/grpc-web-text", accept: "application/grpc-web-text" },
      body,
    });
    assertEquals(r.status, 200);
    assertEquals(r.headers.get("content-type"), "application/grpc-web-text+proto");
    const { messages, trailers } = parseGrpcWeb(unbase64(await r.text()));
    assertEquals(messages, ["Hello text"]);
    assertEquals(trailers?.["grpc-status"], "0");
    // Invalid base64: Envoy's 400, in gRPC terms.
    const bad = await fetch(f.url("/helloworld.Greeter/SayHello"), {
      method: "POST",
      headers: { "content-type": "application/grpc-web-text" },
      body: "AAA*",
    });
    await bad.arrayBuffer();
    assertEquals(bad.status, 400);
    assertEquals(bad.headers.get("grpc-status"), "13");
    assertEquals(bad.headers.get("grpc-message"), "Bad gRPC-web request, invalid base64 data.");
  });
});
