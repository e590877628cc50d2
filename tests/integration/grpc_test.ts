/**
 * gRPC end to end through Ferry with real peers on both sides: a `@grpc/grpc-js` client on an h2c listener
 * (`codec_type: AUTO`) or a TLS listener offering ALPN `h2`, Ferry's HTTP/2 upstream pool
 * (`explicit_http_config.http2_protocol_options`), and a `@grpc/grpc-js` server on loopback. Covers unary calls
 * with metadata and trailers, 10,000-message server, client and bidi streams, 4 MiB messages, deadlines (the
 * client's own and the route's `max_stream_duration.grpc_timeout_header_max`), cancellation, error statuses, an
 * upstream killed mid-stream, local replies mapped to gRPC statuses, and 2,000 concurrent unary calls.
 */
// deno-lint-ignore no-import-prefix -- test-only peer; not in the import map
import * as grpc from "npm:@grpc/grpc-js@^1.12.0";
// deno-lint-ignore no-import-prefix -- test-only peer; not in the import map
import * as loader from "npm:@grpc/proto-loader@^0.7.13";
import { Buffer } from "node:buffer";
import { assert, assertEquals } from "../assert.ts";
import { generateTestPki } from "../../lib/crypto/certs_command.ts";
import { FILE_ACCESS_LOG_TYPE, flushAccessLogs } from "../../lib/observe/access_log.ts";
import { freePort } from "../fakes/ports.ts";
import { itOpts, sleep, startFerry, startRawServer, stat, type TestFerry } from "./_harness.ts";

const TEST_PROTO = `syntax = "proto3";
package ferrytest;
message Msg { uint32 seq = 1; string text = 2; bytes payload = 3; }
service Test {
  rpc Unary(Msg) returns (Msg);
  rpc ServerStream(Msg) returns (stream Msg);
  rpc ClientStream(stream Msg) returns (Msg);
  rpc Bidi(stream Msg) returns (stream Msg);
  rpc Slow(Msg) returns (Msg);
  rpc Fail(Msg) returns (Msg);
  rpc Endless(Msg) returns (stream Msg);
}
`;

/** The wire shape of `ferrytest.Msg` as proto-loader presents it. */
interface Msg {
  seq: number;
  text: string;
  /** Absent when sending; present (maybe empty) on every received message (`defaults: true`). */
  payload?: Buffer;
}

/** Large enough for the 4 MiB messages plus their framing, on both peers. */
const MAX_MESSAGE = 16 << 20;
const STREAM_COUNT = 10_000;

const protoDir = Deno.makeTempDirSync({ prefix: "ferry-grpc-" });
Deno.writeTextFileSync(`${protoDir}/test.proto`, TEST_PROTO);
const definition = loader.loadSync(`${protoDir}/test.proto`, { defaults: true });
// deno-lint-ignore no-explicit-any -- proto-loader's service constructors are untyped
const TestService = (grpc.loadPackageDefinition(definition) as any).ferrytest.Test as grpc.ServiceClientConstructor;

const pki = generateTestPki({ gm: false, hosts: ["localhost"], ips: ["127.0.0.1"] });
for (const [name, pem] of Object.entries(pki)) Deno.writeTextFileSync(`${protoDir}/${name}`, pem);

/** What the grpc-js server saw, for assertions on the upstream side. */
interface ServerLog {
  /** The metadata of every `Unary` call that carried `x-req`. */
  unaryMetadata: grpc.Metadata[];
  /** Per `Slow` call: ms left until the deadline the server derived from `grpc-timeout`, and when it was cancelled. */
  slow: { deadlineInMs: number; cancelledAt?: number }[];
  /** Per `Endless` call: when it started, how many messages it wrote, and when it was cancelled. */
  endless: { startedAt: number; sent: number; cancelledAt?: number }[];
}

interface TestServer {
  readonly port: number;
  readonly log: ServerLog;
  readonly server: grpc.Server;
}

/** Resolves once `emitter` emits `event` (node's `once`, without the import). */
function once(emitter: { once(e: string, f: () => void): unknown }, event: string): Promise<void> {
  return new Promise((r) => emitter.once(event, () => r()));
}

/** Starts the grpc-js server implementing `ferrytest.Test` on 127.0.0.1:0. */
async function startServer(): Promise<TestServer> {
  const log: ServerLog = { unaryMetadata: [], slow: [], endless: [] };
  const server = new grpc.Server({
    "grpc.max_receive_message_length": MAX_MESSAGE,
    "grpc.max_send_message_length": MAX_MESSAGE,
  });
  server.addService(TestService.service, {
    Unary(call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
      const req = call.request;
      const trailers = new grpc.Metadata();
      const tag = call.metadata.get("x-req")[0];
      if (tag !== undefined) {
        log.unaryMetadata.push(call.metadata);
        const md = new grpc.Metadata();
        md.set("x-echo", `echo-${tag}`);
        const bin = call.metadata.get("x-blob-bin")[0];
        if (bin instanceof Buffer) md.set("x-echo-bin", Buffer.from([...bin].reverse()));
        call.sendMetadata(md);
        trailers.set("x-trailer", `t-${req.seq}`);
        trailers.set("x-trailer-bin", Buffer.from([0, 1, 2, 0xff]));
      }
      cb(null, { seq: req.seq, text: `echo ${req.text}`, payload: req.payload ?? Buffer.alloc(0) }, trailers);
    },
    ServerStream(call: grpc.ServerWritableStream<Msg, Msg>) {
      const n = call.request.seq;
      let i = 0;
      let cancelled = false;
      call.on("cancelled", () => cancelled = true);
      const pump = () => {
        while (i < n && !cancelled) {
          const ok = call.write({ seq: i, text: `m${i}` });
          i++;
          if (!ok) {
            call.once("drain", pump);
            return;
          }
        }
        if (!cancelled) call.end();
      };
      pump();
    },
    ClientStream(call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
      let n = 0;
      let inOrder = true;
      call.on("data", (m: Msg) => {
        if (m.seq !== n || m.text !== `c${n}`) inOrder = false;
        n++;
      });
      call.on("end", () => cb(null, { seq: n, text: inOrder ? "in order" : "out of order" }));
    },
    Bidi(call: grpc.ServerDuplexStream<Msg, Msg>) {
      call.on("data", (m: Msg) => {
        if (!call.write({ seq: m.seq, text: `b${m.text}` })) {
          call.pause();
          call.once("drain", () => call.resume());
        }
      });
      call.on("end", () => call.end());
    },
    Slow(call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
      // grpc-js derives the deadline from grpc-timeout (Date.now() + timeout, a number; Infinity without one).
      const deadline = call.getDeadline();
      const entry: ServerLog["slow"][number] = {
        deadlineInMs: (deadline instanceof Date ? deadline.getTime() : deadline) - Date.now(),
      };
      log.slow.push(entry);
      const t = setTimeout(() => cb(null, { seq: 0, text: "slow done" }), call.request.seq);
      call.on("cancelled", () => {
        entry.cancelledAt = performance.now();
        clearTimeout(t);
      });
    },
    Fail(call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
      const md = new grpc.Metadata();
      md.set("x-missing", `thing-${call.request.seq}`);
      md.set("x-missing-bin", Buffer.from([0xde, 0xad]));
      cb({ code: grpc.status.NOT_FOUND, details: `thing ${call.request.seq} not found: gone`, metadata: md });
    },
    Endless(call: grpc.ServerWritableStream<Msg, Msg>) {
      const entry: ServerLog["endless"][number] = { startedAt: performance.now(), sent: 0 };
      log.endless.push(entry);
      const timer = setInterval(() => {
        call.write({ seq: entry.sent, text: "tick" });
        entry.sent++;
      }, 5);
      const stop = () => clearInterval(timer);
      call.on("cancelled", () => {
        entry.cancelledAt = performance.now();
        stop();
      });
      call.on("close", stop);
      call.on("error", stop);
    },
  });
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => e ? rej(e) : res(p))
  );
  return { port, log, server };
}

const HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const H2_UPSTREAM = {
  "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    explicit_http_config: { http2_protocol_options: {} },
  },
};
/** The cap the route `x-ferry-cap` requests take puts on `grpc-timeout`. */
const CAP_MS = 150;

function h2Cluster(name: string, ports: number[]): Record<string, unknown> {
  return {
    name,
    type: "STATIC",
    connect_timeout: "1s",
    typed_extension_protocol_options: H2_UPSTREAM,
    load_assignment: {
      cluster_name: name,
      endpoints: ports.length === 0 ? [] : [{
        lb_endpoints: ports.map((p) => ({
          endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: p } } },
        })),
      }],
    },
  };
}

/**
 * Ferry with one listener (h2c `codec_type: AUTO`, or TLS with ALPN h2,http/1.1) routing `/ferrytest.Test/` to
 * the grpc-js server (`x-ferry-cap` requests on a route honouring `grpc-timeout` up to {@link CAP_MS}),
 * `/ferrytest.Empty/` to a cluster without endpoints, `/ferrytest.Dead/` to a port nobody listens on, and nothing
 * else. Every request goes to an access log file.
 */
function bootstrap(
  ports: { upstream: number; blackhole: number },
  accessLog: string,
  tls: boolean,
): Record<string, unknown> {
  const capped = (c: string) => ({
    cluster: c,
    timeout: "0s",
    max_stream_duration: { grpc_timeout_header_max: `${CAP_MS / 1000}s` },
  });
  const cluster = (c: string) => ({ cluster: c, timeout: "0s" });
  const hcm = {
    name: "envoy.filters.network.http_connection_manager",
    typed_config: {
      "@type": HCM,
      stat_prefix: "grpc",
      codec_type: "AUTO",
      access_log: [{
        name: "envoy.access_loggers.file",
        typed_config: {
          "@type": FILE_ACCESS_LOG_TYPE,
          path: accessLog,
          log_format: {
            text_format_source: {
              inline_string:
                "%REQ(:PATH)% %PROTOCOL% %RESPONSE_CODE% grpc=%RESP(grpc-status)%/%TRAILER(grpc-status)% flags=%RESPONSE_FLAGS% " +
                "details=%RESPONSE_CODE_DETAILS% %DURATION%ms\n",
            },
          },
        },
      }],
      route_config: {
        name: "grpc",
        virtual_hosts: [{
          name: "all",
          domains: ["*"],
          routes: [
            {
              match: { prefix: "/ferrytest.Test/", headers: [{ name: "x-ferry-cap", present_match: true }] },
              route: capped("grpc"),
            },
            {
              match: { prefix: "/ferrytest.Test/", headers: [{ name: "x-ferry-blackhole", present_match: true }] },
              route: capped("blackhole"),
            },
            { match: { prefix: "/ferrytest.Test/" }, route: cluster("grpc") },
            { match: { prefix: "/ferrytest.Empty/" }, route: cluster("empty") },
            { match: { prefix: "/ferrytest.Dead/" }, route: cluster("dead") },
          ],
        }],
      },
      http_filters: [{
        name: "envoy.filters.http.router",
        typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
      }],
    },
  };
  const chain: Record<string, unknown> = { filters: [hcm] };
  if (tls) {
    chain.transport_socket = {
      name: "envoy.transport_sockets.tls",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        common_tls_context: {
          alpn_protocols: ["h2", "http/1.1"],
          tls_certificates: [{
            certificate_chain: { filename: `${protoDir}/server_ecdsa.crt` },
            private_key: { filename: `${protoDir}/server_ecdsa.key` },
          }],
        },
      },
    };
  }
  return {
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
    static_resources: {
      listeners: [{
        name: "grpc",
        address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
        filter_chains: [chain],
      }],
      clusters: [
        h2Cluster("grpc", [ports.upstream]),
        h2Cluster("blackhole", [ports.blackhole]),
        h2Cluster("empty", []),
        h2Cluster("dead", [freePort()]),
      ],
    },
  };
}

/** A running client → Ferry → server chain. */
interface Stack {
  readonly ferry: TestFerry;
  readonly up: TestServer;
  /** The `ferrytest.Test` client, over Ferry. */
  // deno-lint-ignore no-explicit-any -- proto-loader's generated methods are untyped
  readonly client: any;
  /** A generic client on the same channel arguments, for paths the proto does not name. */
  readonly raw: grpc.Client;
  /** The access log so far. */
  accessLog(): Promise<string>;
}

const clientOptions: grpc.ChannelOptions = {
  "grpc.max_receive_message_length": MAX_MESSAGE,
  "grpc.max_send_message_length": MAX_MESSAGE,
};

/** Runs `fn` against a fresh server, Ferry and client, tearing all three down; fails if it runs past `limitMs`. */
async function withStack(fn: (s: Stack) => Promise<void>, opts: { tls?: boolean; limitMs?: number } = {}) {
  const up = await startServer();
  // Accepts connections and never answers: only Ferry's own timers can end a request sent there.
  const blackhole = startRawServer(async (c) => {
    const buf = new Uint8Array(16384);
    while ((await c.read(buf)) !== null) { /* discard */ }
  });
  const accessLogPath = `${protoDir}/access-${crypto.randomUUID()}.log`;
  const ferry = await startFerry(
    bootstrap({ upstream: up.port, blackhole: blackhole.port }, accessLogPath, opts.tls ?? false),
  );
  const target = `127.0.0.1:${ferry.port()}`;
  const creds = opts.tls
    ? grpc.credentials.createSsl(Buffer.from(pki["ca_ecdsa.crt"]!))
    : grpc.credentials.createInsecure();
  // Node's TLS (Deno's too) refuses an IP address as SNI: name the certificate's DNS name instead.
  const options = opts.tls ? { ...clientOptions, "grpc.ssl_target_name_override": "localhost" } : clientOptions;
  const client = new TestService(target, creds, options);
  const raw = new grpc.Client(target, creds, options);
  const stack: Stack = {
    ferry,
    up,
    client,
    raw,
    accessLog: async () => {
      await flushAccessLogs();
      return await Deno.readTextFile(accessLogPath).catch(() => "");
    },
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      fn(stack),
      new Promise<never>((_, rej) =>
        timer = setTimeout(() => rej(new Error(`test ran past ${opts.limitMs ?? 30_000} ms`)), opts.limitMs ?? 30_000)
      ),
    ]);
  } catch (e) {
    console.error(`access log:\n${(await stack.accessLog()).slice(-4000)}`);
    throw e;
  } finally {
    clearTimeout(timer);
    client.close();
    raw.close();
    up.server.forceShutdown();
    await ferry.stop();
    blackhole.close();
  }
}

/** The outcome of a unary call: the reply or the error, plus the header metadata and the final status. */
interface UnaryResult {
  reply?: Msg;
  error?: grpc.ServiceError;
  metadata?: grpc.Metadata;
  status: grpc.StatusObject;
  ms: number;
}

function unary(
  // deno-lint-ignore no-explicit-any -- proto-loader's generated methods are untyped
  client: any,
  method: string,
  req: Partial<Msg>,
  opts: { metadata?: grpc.Metadata; deadlineMs?: number } = {},
): Promise<UnaryResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const out: Partial<UnaryResult> = {};
    let pending = 2;
    const done = () => {
      if (--pending === 0) resolve({ ...out, ms: performance.now() - started } as UnaryResult);
    };
    const callOpts: grpc.CallOptions = opts.deadlineMs === undefined ? {} : { deadline: Date.now() + opts.deadlineMs };
    const call = client[method](req, opts.metadata ?? new grpc.Metadata(), callOpts, (e: grpc.ServiceError, r: Msg) => {
      if (e) out.error = e;
      else out.reply = r;
      done();
    });
    call.on("metadata", (md: grpc.Metadata) => out.metadata = md);
    call.on("status", (s: grpc.StatusObject) => {
      out.status = s;
      done();
    });
  });
}

/** A unary call on an arbitrary path with raw bytes (for paths outside the proto). */
function rawUnary(raw: grpc.Client, path: string): Promise<{ error?: grpc.ServiceError; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    raw.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
      new grpc.Metadata(),
      { deadline: Date.now() + 5000 },
      (e) => resolve({ ...(e ? { error: e } : {}), ms: performance.now() - started }),
    );
  });
}

Deno.test("grpc unary call carries request metadata, response metadata and trailers end to end", itOpts, async () => {
  await withStack(async ({ client, up }) => {
    const md = new grpc.Metadata();
    md.set("x-req", "abc123");
    md.set("x-blob-bin", Buffer.from([1, 2, 3, 0, 0xfe]));
    const r = await unary(client, "Unary", { seq: 7, text: "hello" }, { metadata: md });
    assertEquals(r.error, undefined, r.error?.message);
    assertEquals(r.reply?.seq, 7);
    assertEquals(r.reply?.text, "echo hello");
    // The server got the metadata as sent (binary intact).
    const seen = up.log.unaryMetadata[0];
    assert(seen !== undefined, "the server saw no Unary call with x-req");
    assertEquals(seen.get("x-req"), ["abc123"]);
    assertEquals([...(seen.get("x-blob-bin")[0] as Buffer)], [1, 2, 3, 0, 0xfe]);
    // The client got the server's header metadata ...
    assertEquals(r.metadata?.get("x-echo"), ["echo-abc123"]);
    assertEquals([...(r.metadata?.get("x-echo-bin")[0] as Buffer)], [0xfe, 0, 3, 2, 1]);
    // ... and its trailers with status OK.
    assertEquals(r.status.code, grpc.status.OK);
    assertEquals(r.status.metadata.get("x-trailer"), ["t-7"]);
    assertEquals([...(r.status.metadata.get("x-trailer-bin")[0] as Buffer)], [0, 1, 2, 0xff]);
  });
});

Deno.test(`grpc server streaming delivers ${STREAM_COUNT} messages in order`, itOpts, async () => {
  await withStack(async ({ client }) => {
    const started = performance.now();
    const call = client.ServerStream({ seq: STREAM_COUNT });
    let n = 0;
    let firstBad = -1;
    call.on("data", (m: Msg) => {
      if (firstBad < 0 && (m.seq !== n || m.text !== `m${n}`)) firstBad = n;
      n++;
    });
    const status = await new Promise<grpc.StatusObject>((r) => call.on("status", r));
    const ms = performance.now() - started;
    console.log(`server stream of ${STREAM_COUNT}: ${ms.toFixed(0)} ms`);
    assertEquals(status.code, grpc.status.OK, status.details);
    assertEquals(n, STREAM_COUNT);
    assertEquals(firstBad, -1, `message ${firstBad} out of order`);
  });
});

Deno.test(`grpc client streaming delivers ${STREAM_COUNT} messages in order`, itOpts, async () => {
  await withStack(async ({ client }) => {
    const started = performance.now();
    let reply: Msg | undefined;
    let error: grpc.ServiceError | undefined;
    const finished = new Promise<void>((resolve) => {
      const call = client.ClientStream((e: grpc.ServiceError | null, r: Msg) => {
        if (e) error = e;
        else reply = r;
        resolve();
      });
      (async () => {
        for (let i = 0; i < STREAM_COUNT; i++) {
          if (!call.write({ seq: i, text: `c${i}` })) await once(call, "drain");
        }
        call.end();
      })();
    });
    await finished;
    const ms = performance.now() - started;
    console.log(`client stream of ${STREAM_COUNT}: ${ms.toFixed(0)} ms`);
    assertEquals(error, undefined, error?.message);
    assertEquals(reply?.seq, STREAM_COUNT);
    assertEquals(reply?.text, "in order");
  });
});

Deno.test(`grpc bidi streaming echoes ${STREAM_COUNT} messages in order`, itOpts, async () => {
  await withStack(async ({ client }) => {
    const started = performance.now();
    const call = client.Bidi();
    let n = 0;
    let firstBad = -1;
    call.on("data", (m: Msg) => {
      if (firstBad < 0 && (m.seq !== n || m.text !== `bx${n}`)) firstBad = n;
      n++;
    });
    const status = new Promise<grpc.StatusObject>((r) => call.on("status", r));
    for (let i = 0; i < STREAM_COUNT; i++) {
      if (!call.write({ seq: i, text: `x${i}` })) await once(call, "drain");
    }
    call.end();
    const s = await status;
    const ms = performance.now() - started;
    console.log(`bidi stream of ${STREAM_COUNT}: ${ms.toFixed(0)} ms`);
    assertEquals(s.code, grpc.status.OK, s.details);
    assertEquals(n, STREAM_COUNT);
    assertEquals(firstBad, -1, `message ${firstBad} out of order`);
  });
});

Deno.test("grpc 4 MiB messages cross Ferry both ways", itOpts, async () => {
  await withStack(async ({ client }) => {
    const payload = Buffer.alloc(4 << 20);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + (i >> 12)) & 0xff;
    const started = performance.now();
    const r = await unary(client, "Unary", { seq: 1, text: "big", payload });
    console.log(`4 MiB unary round trip: ${(performance.now() - started).toFixed(0)} ms`);
    assertEquals(r.error, undefined, r.error?.message);
    const got = r.reply?.payload ?? Buffer.alloc(0);
    assertEquals(got.length, payload.length);
    assert(Buffer.compare(got, payload) === 0, "the echoed 4 MiB payload differs");
  });
});

Deno.test("grpc client deadline of 200 ms on a slow method gives DEADLINE_EXCEEDED promptly", itOpts, async () => {
  await withStack(async ({ client, up }) => {
    const r = await unary(client, "Slow", { seq: 3000 }, { deadlineMs: 200 });
    assertEquals(r.error?.code, grpc.status.DEADLINE_EXCEEDED, r.error?.message);
    assert(r.ms >= 150 && r.ms < 1000, `DEADLINE_EXCEEDED after ${r.ms.toFixed(0)} ms`);
    // The grpc-timeout reached the server through Ferry (no cap on this route).
    const s = up.log.slow[0];
    assert(s !== undefined, "the server saw no Slow call");
    assert(s.deadlineInMs > 100 && s.deadlineInMs <= 200, `server deadline in ${s.deadlineInMs} ms`);
  });
});

Deno.test(
  "grpc route max_stream_duration.grpc_timeout_header_max caps the grpc-timeout the upstream sees",
  itOpts,
  async () => {
    await withStack(async ({ client, up }) => {
      const md = new grpc.Metadata();
      md.set("x-ferry-cap", "1");
      const r = await unary(client, "Slow", { seq: 3000 }, { metadata: md, deadlineMs: 5000 });
      // Ferry rewrote the upstream grpc-timeout to the cap ...
      const s = up.log.slow[0];
      assert(s !== undefined, "the server saw no Slow call");
      assert(s.deadlineInMs <= CAP_MS, `server deadline in ${s.deadlineInMs} ms, cap ${CAP_MS}`);
      // ... so the call ends at the cap, not at the client's 5 s. Who answers is a race between Ferry's timer and
      // the server's own deadline (set a moment later from the rewritten header); both say DEADLINE_EXCEEDED.
      console.log(`capped deadline: ${r.ms.toFixed(0)} ms, details ${JSON.stringify(r.error?.details)}`);
      assertEquals(r.error?.code, grpc.status.DEADLINE_EXCEEDED, r.error?.message);
      assert(r.ms >= CAP_MS - 20 && r.ms < 1000, `DEADLINE_EXCEEDED after ${r.ms.toFixed(0)} ms, cap ${CAP_MS}`);
    });
  },
);

Deno.test(
  "grpc route grpc_timeout_header_max: Ferry's own timer answers DEADLINE_EXCEEDED when the upstream is silent",
  itOpts,
  async () => {
    await withStack(async ({ client, ferry, accessLog }) => {
      const md = new grpc.Metadata();
      md.set("x-ferry-blackhole", "1");
      const r = await unary(client, "Slow", { seq: 0 }, { metadata: md, deadlineMs: 5000 });
      console.log(`capped deadline, silent upstream: ${r.ms.toFixed(0)} ms`);
      assertEquals(r.error?.code, grpc.status.DEADLINE_EXCEEDED, r.error?.message);
      assertEquals(r.error?.details, "downstream duration timeout");
      assert(r.ms >= CAP_MS - 20 && r.ms < 1000, `DEADLINE_EXCEEDED after ${r.ms.toFixed(0)} ms, cap ${CAP_MS}`);
      assertEquals(await stat(ferry, "http.grpc.downstream_rq_max_duration_reached"), 1);
      assert((await accessLog()).includes("details=max_duration_timeout"), await accessLog());
    });
  },
);

Deno.test("grpc client cancelling a server stream is seen by the server promptly", itOpts, async () => {
  await withStack(async ({ client, up }) => {
    const call = client.Endless({});
    let got = 0;
    const five = new Promise<void>((r) =>
      call.on("data", () => {
        if (++got === 5) r();
      })
    );
    const status = new Promise<grpc.StatusObject>((r) => call.on("status", r));
    call.on("error", () => {});
    await five;
    const cancelledAt = performance.now();
    call.cancel();
    assertEquals((await status).code, grpc.status.CANCELLED);
    const deadline = performance.now() + 2000;
    while (up.log.endless[0]?.cancelledAt === undefined && performance.now() < deadline) await sleep(5);
    const seen = up.log.endless[0]?.cancelledAt;
    assert(seen !== undefined, "the server never saw the cancel");
    const lag = seen - cancelledAt;
    console.log(`cancel seen by the server after ${lag.toFixed(1)} ms`);
    assert(lag < 500, `the server saw the cancel after ${lag.toFixed(0)} ms`);
  });
});

Deno.test("grpc NOT_FOUND with a message and trailers reaches the client exactly", itOpts, async () => {
  await withStack(async ({ client }) => {
    const r = await unary(client, "Fail", { seq: 42 });
    assertEquals(r.error?.code, grpc.status.NOT_FOUND);
    assertEquals(r.error?.details, "thing 42 not found: gone");
    assertEquals(r.status.metadata.get("x-missing"), ["thing-42"]);
    assertEquals([...(r.status.metadata.get("x-missing-bin")[0] as Buffer)], [0xde, 0xad]);
  });
});

/** Starts an `Endless` stream, kills the grpc-js server after 5 messages; the final status and how long it took. */
// deno-lint-ignore no-explicit-any -- proto-loader's generated methods are untyped
async function killMidStream(client: any, up: TestServer): Promise<{ status: grpc.StatusObject; ms: number }> {
  const call = client.Endless({});
  let got = 0;
  const five = new Promise<void>((r) =>
    call.on("data", () => {
      if (++got === 5) r();
    })
  );
  const status = new Promise<grpc.StatusObject>((r) => call.on("status", r));
  call.on("error", () => {});
  await five;
  const killedAt = performance.now();
  up.server.forceShutdown();
  const s = await status;
  const ms = performance.now() - killedAt;
  console.log(`after the kill: ${grpc.status[s.code]} ${JSON.stringify(s.details)} in ${ms.toFixed(0)} ms`);
  return { status: s, ms };
}

Deno.test("grpc upstream killed mid-stream ends the client's stream with an error at once", itOpts, async () => {
  await withStack(async ({ client, up, accessLog }) => {
    const { status, ms } = await killMidStream(client, up);
    assert(status.code !== grpc.status.OK, "the client got OK from a stream whose upstream died");
    assert(ms < 2000, `the client learned of the kill after ${ms.toFixed(0)} ms`);
    // Ferry logged the upstream reset.
    assert(/Endless .* flags=[^ ]*UR/.test(await accessLog()), await accessLog());
  });
});

Deno.test({
  name: "grpc upstream killed mid-stream gives the client Envoy's status (INTERNAL) or UNAVAILABLE",
  // Ferry resets the downstream stream with RST_STREAM(NO_ERROR), as Envoy (codec_impl.cc reasonToReset), which
  // grpc-js reports as INTERNAL "Received RST_STREAM with code 0 (Call ended without gRPC status)"; CANCEL would
  // read as CANCELLED, as if the caller had cancelled.
  ...itOpts,
  fn: async () => {
    await withStack(async ({ client, up }) => {
      const { status } = await killMidStream(client, up);
      assert(
        status.code === grpc.status.UNAVAILABLE || status.code === grpc.status.INTERNAL,
        `got ${grpc.status[status.code]} ${status.details}`,
      );
    });
  },
});

Deno.test("grpc local replies are trailers-only gRPC statuses: no route, no healthy upstream", itOpts, async () => {
  await withStack(async ({ raw, accessLog }) => {
    // No route: Envoy's 404 maps to UNIMPLEMENTED.
    const nr = await rawUnary(raw, "/ferrytest.Nowhere/Call");
    assertEquals(nr.error?.code, grpc.status.UNIMPLEMENTED, nr.error?.message);
    // A cluster without endpoints: 503 "no healthy upstream" maps to UNAVAILABLE.
    const uh = await rawUnary(raw, "/ferrytest.Empty/Call");
    assertEquals(uh.error?.code, grpc.status.UNAVAILABLE, uh.error?.message);
    assertEquals(uh.error?.details, "no healthy upstream");
    // A refused connection: 503 too.
    const uf = await rawUnary(raw, "/ferrytest.Dead/Call");
    assertEquals(uf.error?.code, grpc.status.UNAVAILABLE, uf.error?.message);
    // Trailers-only: HTTP 200 with grpc-status in the response headers and no trailers.
    const log = await accessLog();
    assert(log.includes("/ferrytest.Nowhere/Call HTTP/2 200 grpc=12/- flags=NR "), log);
    assert(log.includes("/ferrytest.Empty/Call HTTP/2 200 grpc=14/- flags=UH "), log);
    assert(log.includes("/ferrytest.Dead/Call HTTP/2 200 grpc=14/- flags=UF "), log);
    // grpc-js would report a non-gRPC reply (an HTTP error page) as a content-type/HTTP status error instead.
    for (const e of [nr.error, uh.error, uf.error]) assert(!/HTTP status code/.test(e?.details ?? ""), e?.details);
  });
});

Deno.test("grpc 2,000 unary calls, 100 in flight, over one channel all succeed", itOpts, async () => {
  await withStack(async ({ client, ferry }) => {
    const total = 2000;
    const inFlight = 100;
    let next = 0;
    const failures: string[] = [];
    const started = performance.now();
    const worker = async () => {
      while (next < total) {
        const i = next++;
        const r = await unary(client, "Unary", { seq: i, text: `u${i}` });
        if (r.error || r.reply?.seq !== i || r.reply?.text !== `echo u${i}`) {
          failures.push(`${i}: ${r.error?.message ?? JSON.stringify(r.reply)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
    const ms = performance.now() - started;
    const cx = await stat(ferry, "cluster.grpc.upstream_cx_total");
    console.log(`${total} unary calls, ${inFlight} in flight: ${ms.toFixed(0)} ms; upstream connections ${cx}`);
    assertEquals(failures.slice(0, 5), []);
    assertEquals(await stat(ferry, "cluster.grpc.upstream_rq_total"), total);
  }, { limitMs: 60_000 });
});

Deno.test("grpc unary over a TLS listener with ALPN h2 and a client trusting the test CA", itOpts, async () => {
  await withStack(async ({ client, accessLog }) => {
    const md = new grpc.Metadata();
    md.set("x-req", "tls");
    const r = await unary(client, "Unary", { seq: 9, text: "over tls" }, { metadata: md });
    assertEquals(r.error, undefined, r.error?.message);
    assertEquals(r.reply?.text, "echo over tls");
    assertEquals(r.metadata?.get("x-echo"), ["echo-tls"]);
    assertEquals(r.status.metadata.get("x-trailer"), ["t-9"]);
    // ALPN chose h2 on the TLS listener.
    assert((await accessLog()).includes("/ferrytest.Test/Unary HTTP/2 200 "), await accessLog());
  }, { tls: true });
});
