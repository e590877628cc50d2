import { setLogLevel } from "../observe/log.ts";
import { http1CodecFactory } from "../../codecs/http1/mod.ts";
import { assert, assertEquals, assertThrows } from "../../tests/assert.ts";
import { freePort } from "../../tests/fakes/ports.ts";
import { TestStats } from "../../tests/fakes/stats.ts";
import { TestUpstream, waitFor } from "../../tests/fakes/upstream.ts";
import type { ClientConnectionCodec, CodecFactory, StreamDecoder, StreamEncoder } from "../api/codec.ts";
import { ConfigError } from "../api/errors.ts";
import { HeaderMap } from "../api/headers.ts";
import type { ClusterInfo } from "../api/upstream.ts";
import { ObjReader } from "../config/reader.ts";
import { ClusterImpl } from "./cluster.ts";
import { parseCluster } from "./config.ts";
import { connectHost } from "./connect.ts";
import {
  decodeHealthCheckResponse,
  encodeHealthCheckRequest,
  HealthChecker,
  type HealthCheckerConfig,
  parseGrpcHealthCheck,
} from "./health_check.ts";
import { HostImpl } from "./host.ts";

// Transitions are logged at info/warn; the tests assert them through flags and stats.
setLogLevel("error");

function hcCluster(ports: number[], check: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return parseCluster({
    name: "svc",
    connect_timeout: "0.5s",
    load_assignment: {
      cluster_name: "svc",
      endpoints: [{
        lb_endpoints: ports.map((p) => ({
          endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: p } } },
        })),
      }],
    },
    health_checks: [{
      timeout: "0.2s",
      interval: "0.03s",
      no_traffic_interval: "0.03s",
      unhealthy_threshold: 2,
      healthy_threshold: 2,
      ...check,
    }],
    ...extra,
  }, "c");
}

Deno.test("HealthChecker (HTTP) starts hosts failed, passes them on the first success, fails them on bad statuses", async () => {
  const a = new TestUpstream();
  const b = new TestUpstream();
  b.reply = (r) => r.path === "/healthz" ? { status: 503 } : {};
  const stats = new TestStats();
  const c = new ClusterImpl(
    hcCluster([a.port, b.port], {
      http_health_check: {
        path: "/healthz",
        host: "hc.local",
        request_headers_to_add: [{ header: { key: "x-hc", value: "1" } }],
      },
    }),
    { stats, httpCodec: http1CodecFactory },
  );
  try {
    assertEquals(c.hosts.map((h) => h.healthFlagsText), [
      "/failed_active_hc/pending_active_hc",
      "/failed_active_hc/pending_active_hc",
    ]);
    await c.initialize();
    assertEquals(c.hosts.map((h) => h.healthy), [true, false]);
    assertEquals(c.hosts[1]!.healthFlagsText, "/failed_active_hc");
    const seen = a.requests[0]!;
    assertEquals(seen.path, "/healthz");
    assertEquals(seen.headers["host"], "hc.local");
    assertEquals(seen.headers["user-agent"], "Envoy/HC");
    assertEquals(seen.headers["x-hc"], "1");
    assertEquals(stats.get("cluster.svc.membership_healthy"), 1);
    assertEquals(stats.get("cluster.svc.health_check.healthy"), 1);
    // Connections are reused between checks.
    await waitFor(() => a.requests.length >= 4, 2000, "more checks");
    assertEquals(a.accepted, 1);
    // b recovers: two passes in a row are needed now.
    b.reply = () => ({});
    await waitFor(() => c.hosts[1]!.healthy, 2000, "b healthy");
    assert(stats.get("cluster.svc.health_check.success") >= 3);
    assert(stats.get("cluster.svc.health_check.failure") >= 1);
    // a goes bad: one non-2xx answer is enough (Envoy's active failure).
    a.reply = () => ({ status: 500 });
    await waitFor(() => !c.hosts[0]!.healthy, 2000, "a unhealthy");
    assert(stats.get("cluster.svc.health_check.attempt") >= 5);
  } finally {
    c.shutdown();
    await a.close();
    await b.close();
  }
});

Deno.test("HealthChecker counts network failures up to unhealthy_threshold and times out hung hosts", async () => {
  const a = new TestUpstream();
  const hang = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  (async () => {
    for await (const conn of hang) held.push(conn);
  })().catch(() => {});
  const stats = new TestStats();
  const c = new ClusterImpl(
    hcCluster([a.port, hang.addr.port], { http_health_check: { path: "/" }, timeout: "0.1s" }),
    { stats, httpCodec: http1CodecFactory },
  );
  try {
    await c.initialize();
    assertEquals(c.hosts[0]!.healthy, true);
    assertEquals(c.hosts[1]!.healthy, false);
    await waitFor(() => c.hosts[1]!.healthFlagsText.includes("/active_hc_timeout"), 2000, "timeout flag");
    // a stops listening: connection refused twice → unhealthy.
    await a.close();
    await waitFor(() => !c.hosts[0]!.healthy, 2000, "a unhealthy");
    assert(stats.get("cluster.svc.health_check.network_failure") >= 3);
  } finally {
    c.shutdown();
    hang.close();
    for (const h of held) {
      try {
        h.close();
      } catch { /* closed */ }
    }
  }
});

Deno.test("HealthChecker (TCP) sends the payload and waits for the expected bytes", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let answer = "PONG";
  (async () => {
    for await (const conn of l) {
      (async () => {
        const buf = new Uint8Array(64);
        const n = await conn.read(buf);
        if (n !== null && new TextDecoder().decode(buf.subarray(0, n)) === "PING") {
          await conn.write(new TextEncoder().encode(answer));
        }
        await new Promise((r) => setTimeout(r, 50));
        conn.close();
      })().catch(() => {});
    }
  })().catch(() => {});
  const stats = new TestStats();
  const c = new ClusterImpl(
    hcCluster([l.addr.port], {
      tcp_health_check: { send: { text: "50494e47" }, receive: [{ text: "504f" }, { text: "4e47" }] },
      unhealthy_threshold: 1,
    }),
    { stats },
  );
  try {
    await c.initialize();
    assertEquals(c.hosts[0]!.healthy, true);
    answer = "NOPE";
    await waitFor(() => !c.hosts[0]!.healthy, 2000, "unhealthy on wrong payload");
  } finally {
    c.shutdown();
    l.close();
  }
});

// ---- gRPC health checks ----

/** A cluster's first health check with its checker replaced by a gRPC one (the parser does not take it yet). */
function grpcCheckConfig(grpc: Record<string, unknown>, extra: Record<string, unknown> = {}): HealthCheckerConfig {
  const hc = hcCluster([1], { http_health_check: { path: "/" }, ...extra }).healthChecks[0]!;
  return { ...hc, checker: parseGrpcHealthCheck(new ObjReader(grpc, "c.health_checks[0].grpc_health_check")) };
}

Deno.test("parseGrpcHealthCheck reads service_name, authority and initial_metadata", () => {
  assertEquals(parseGrpcHealthCheck(new ObjReader({}, "g")), {
    kind: "grpc",
    serviceName: "",
    authority: undefined,
    initialMetadata: [],
  });
  assertEquals(
    parseGrpcHealthCheck(
      new ObjReader({
        service_name: "helloworld.Greeter",
        authority: "hc.example",
        initial_metadata: [
          { header: { key: "X-Token", value: "t" } },
          { header: { key: "x-one", value: "1" }, append_action: "OVERWRITE_IF_EXISTS_OR_ADD" },
        ],
      }, "g"),
    ),
    {
      kind: "grpc",
      serviceName: "helloworld.Greeter",
      authority: "hc.example",
      initialMetadata: [{ name: "x-token", value: "t", append: true }, { name: "x-one", value: "1", append: false }],
    },
  );
  assertThrows(() => parseGrpcHealthCheck(new ObjReader({ service: "x" }, "g")), ConfigError, "g.service");
  assertThrows(
    () => parseGrpcHealthCheck(new ObjReader({ initial_metadata: [{ header: { key: ":path", value: "/" } }] }, "g")),
    ConfigError,
    "g.initial_metadata[0].header.key",
  );
  assertThrows(() => parseGrpcHealthCheck(new ObjReader({ authority: "a\r\nb" }, "g")), ConfigError, "g.authority");
});

Deno.test("encodeHealthCheckRequest writes field 1 as a length-delimited string, nothing for an empty service", () => {
  assertEquals(encodeHealthCheckRequest(""), new Uint8Array(0));
  assertEquals(encodeHealthCheckRequest("svc"), new Uint8Array([0x0a, 3, 0x73, 0x76, 0x63]));
  const long = encodeHealthCheckRequest("s".repeat(300));
  assertEquals([...long.subarray(0, 3)], [0x0a, 0xac, 0x02]);
  assertEquals(long.length, 303);
});

Deno.test("decodeHealthCheckResponse reads the status enum, skips unknown fields and rejects malformed bytes", () => {
  assertEquals(decodeHealthCheckResponse(new Uint8Array([0x08, 0x01])), 1);
  assertEquals(decodeHealthCheckResponse(new Uint8Array([0x08, 0x02])), 2);
  assertEquals(decodeHealthCheckResponse(new Uint8Array(0)), 0);
  // Unknown fields of every wire type before it; the last status wins.
  const skipped = [0x12, 2, 0x41, 0x42, 0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x25, 1, 2, 3, 4, 0x18, 0x96, 0x01];
  assertEquals(decodeHealthCheckResponse(new Uint8Array([0x08, 0x02, ...skipped, 0x08, 0x01])), 1);
  // A negative enum value: ten bytes, read as int32.
  assertEquals(
    decodeHealthCheckResponse(new Uint8Array([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])),
    -1,
  );
  for (const bad of [[0x08], [0x12, 5, 1], [0x0b], [0x00, 0x01], [0x08, 0x80, 0x80]]) {
    assertEquals(decodeHealthCheckResponse(new Uint8Array(bad)), undefined, `${bad}`);
  }
});

/** What the fake HTTP/2 codec answers a check with. */
type Answer = (["h", string[], boolean] | ["d", Uint8Array, boolean] | ["t", string[]] | ["reset"])[];

/**
 * A stand-in for the HTTP/2 codec (multiplexing pool mode): it records each request and answers it from `answer`
 * once the request ends, whatever the bytes on the wire.
 */
class FakeGrpcCodec implements CodecFactory {
  readonly name = "fake-h2";
  readonly poolMode = "multiplex-stream-id" as const;
  readonly requests: { headers: Record<string, string>; body: Uint8Array }[] = [];
  clients = 0;
  constructor(public answer: () => Answer) {}

  createServer(): never {
    throw new Error("client only");
  }

  createClient(): ClientConnectionCodec {
    this.clients++;
    // deno-lint-ignore no-this-alias
    const fake = this;
    let active = 0;
    return {
      protocol: "HTTP/2",
      reusable: true,
      get activeStreams() {
        return active;
      },
      dispatch() {},
      onEof() {},
      newStream(decoder: StreamDecoder): StreamEncoder {
        active++;
        let headers: HeaderMap | undefined;
        const chunks: Uint8Array[] = [];
        const respond = () => {
          fake.requests.push({ headers: headers!.toObject(), body: concatBytes(chunks) });
          setTimeout(() => {
            for (const a of fake.answer()) {
              if (a[0] === "h") decoder.decodeHeaders(new HeaderMap(a[1].slice()), a[2]);
              else if (a[0] === "d") decoder.decodeData(a[1], a[2]);
              else if (a[0] === "t") decoder.decodeTrailers(new HeaderMap(a[1].slice()));
              else decoder.onReset?.("remote-reset", "stream reset by the fake");
            }
            active--;
          }, 0);
        };
        return {
          headersSent: false,
          encodeHeaders(h, end) {
            headers = h;
            if (end) respond();
          },
          encodeData(d, end) {
            chunks.push(d.slice());
            if (end) respond();
          },
          encodeTrailers() {
            respond();
          },
          resetStream() {},
        };
      },
    };
  }
}

function concatBytes(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** A gRPC frame around a message. */
function frame(msg: number[]): Uint8Array {
  return new Uint8Array([0, 0, 0, 0, msg.length, ...msg]);
}

const GRPC_OK_HEADERS = [":status", "200", "content-type", "application/grpc"];
const serving = (status: number): Answer => [
  ["h", GRPC_OK_HEADERS, false],
  ["d", frame([0x08, status]), false],
  ["t", ["grpc-status", "0"]],
];

/** A listener that accepts and holds connections (the fake codec ignores the bytes). */
function sink(): { port: number; accepted: () => number; close(): void } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  (async () => {
    for await (const c of l) {
      conns.push(c);
      (async () => {
        const buf = new Uint8Array(4096);
        while (await c.read(buf) !== null) { /* discard */ }
      })().catch(() => {});
    }
  })().catch(() => {});
  return {
    port: l.addr.port,
    accepted: () => conns.length,
    close() {
      l.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

function grpcChecker(
  config: HealthCheckerConfig,
  ports: number[],
  codec: CodecFactory | undefined,
  stats = new TestStats(),
): { hc: HealthChecker; hosts: HostImpl[]; stats: TestStats } {
  const hc = new HealthChecker(config, { name: "svc", scope: stats.scope("cluster.svc"), hasTraffic: () => false }, {
    connect: connectHost,
    grpcCodec: codec,
  });
  const hosts = ports.map((p) =>
    new HostImpl({} as ClusterInfo, "127.0.0.1", p, { initialFlags: HealthChecker.INITIAL_FLAGS })
  );
  hc.start(hosts);
  return { hc, hosts, stats };
}

Deno.test("HealthChecker (gRPC) needs an HTTP/2 codec", () => {
  const config = grpcCheckConfig({});
  assertThrows(
    () =>
      new HealthChecker(config, { name: "svc", scope: new TestStats(), hasTraffic: () => false }, {
        connect: connectHost,
      }),
    "gRPC health checks need an HTTP/2 codec",
  );
  // A multiplexing httpCodec serves.
  const codec = new FakeGrpcCodec(() => serving(1));
  new HealthChecker(config, { name: "svc", scope: new TestStats(), hasTraffic: () => false }, {
    connect: connectHost,
    httpCodec: codec,
  }).stop();
});

Deno.test("HealthChecker (gRPC) sends Health/Check and passes a host only while it answers SERVING", async () => {
  const up = sink();
  let answer = serving(1);
  const codec = new FakeGrpcCodec(() => answer);
  const { hc, hosts, stats } = grpcChecker(
    grpcCheckConfig({
      service_name: "helloworld.Greeter",
      authority: "hc.example",
      initial_metadata: [{ header: { key: "x-hc", value: "1" } }],
    }),
    [up.port],
    codec,
  );
  const host = hosts[0]!;
  try {
    await hc.firstRound();
    assert(host.healthy, host.healthFlagsText);
    const r = codec.requests[0]!;
    assertEquals(r.headers[":method"], "POST");
    assertEquals(r.headers[":path"], "/grpc.health.v1.Health/Check");
    assertEquals(r.headers[":authority"], "hc.example");
    assertEquals(r.headers["content-type"], "application/grpc");
    assertEquals(r.headers["te"], "trailers");
    assertEquals(r.headers["x-hc"], "1");
    assertEquals(r.body, new Uint8Array([0, 0, 0, 0, 20, 0x0a, 18, ...new TextEncoder().encode("helloworld.Greeter")]));
    // NOT_SERVING fails the host at once (an active failure).
    answer = serving(2);
    await waitFor(() => !host.healthy, 2000, "unhealthy on NOT_SERVING");
    assertEquals(stats.get("cluster.svc.health_check.network_failure"), 0);
    answer = serving(1);
    await waitFor(() => host.healthy, 2000, "healthy again");
    // The connection is kept between checks.
    assertEquals(up.accepted(), 1);
    assertEquals(codec.clients, 1);
  } finally {
    hc.stop();
    up.close();
  }
});

Deno.test("HealthChecker (gRPC) fails hosts on non-OK statuses, non-gRPC answers and broken bodies", async () => {
  const cases: [string, Answer][] = [
    ["grpc-status 12", [["h", GRPC_OK_HEADERS, false], ["t", ["grpc-status", "12", "grpc-message", "nope"]]]],
    ["trailers-only", [["h", [...GRPC_OK_HEADERS, "grpc-status", "14"], true]]],
    ["http 503", [["h", [":status", "503"], true]]],
    ["text/plain", [["h", [":status", "200", "content-type", "text/plain"], false], ["d", new Uint8Array(1), true]]],
    ["no trailers", [["h", GRPC_OK_HEADERS, false], ["d", frame([0x08, 1]), true]]],
    ["two messages", [
      ["h", GRPC_OK_HEADERS, false],
      ["d", concatBytes([frame([0x08, 1]), frame([0x08, 1])]), false],
      ["t", ["grpc-status", "0"]],
    ]],
    ["no message", [["h", GRPC_OK_HEADERS, false], ["t", ["grpc-status", "0"]]]],
    ["SERVICE_UNKNOWN", serving(3)],
    ["truncated", [["h", GRPC_OK_HEADERS, false], ["d", new Uint8Array([0, 0, 0, 0, 9, 8]), false], [
      "t",
      ["grpc-status", "0"],
    ]]],
  ];
  const up = sink();
  const codec = new FakeGrpcCodec(() => serving(1));
  const stats = new TestStats();
  try {
    for (const [what, answer] of cases) {
      codec.answer = () => answer;
      const { hc, hosts: [host] } = grpcChecker(grpcCheckConfig({}), [up.port], codec, stats);
      try {
        await hc.firstRound();
        assert(!host!.healthy, what);
        // Active failures: no network failure counted.
        assertEquals(stats.get("cluster.svc.health_check.network_failure"), 0, what);
      } finally {
        hc.stop();
      }
    }
  } finally {
    up.close();
  }
});

Deno.test("HealthChecker (gRPC) counts resets and refused connections as network failures", async () => {
  const up = sink();
  const codec = new FakeGrpcCodec(() => [["reset"]]);
  const dead = freePort();
  const { hc, hosts, stats } = grpcChecker(grpcCheckConfig({}), [up.port, dead], codec);
  try {
    await hc.firstRound();
    assertEquals(hosts.map((h) => h.healthy), [false, false]);
    await waitFor(() => stats.get("cluster.svc.health_check.network_failure") >= 4, 2000, "network failures");
    assertEquals(stats.get("cluster.svc.health_check.success"), 0);
  } finally {
    hc.stop();
    up.close();
  }
});

// ---- against a real gRPC server ----

const HTTP2_CODEC = new URL("../../codecs/http2/codec.ts", import.meta.url);
const haveHttp2 = await Deno.stat(HTTP2_CODEC).then(() => true, () => false);

const HEALTH_PROTO = `syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}
service Health { rpc Check(HealthCheckRequest) returns (HealthCheckResponse); }
`;

Deno.test({
  name: `HealthChecker (gRPC) over HTTP/2 against @grpc/grpc-js: SERVING, NOT_SERVING, server down${
    haveHttp2 ? "" : " (ignored: waits for codecs/http2/codec.ts and its http2CodecFactory)"
  }`,
  ignore: !haveHttp2,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const { http2CodecFactory } = await import(HTTP2_CODEC.href) as { http2CodecFactory: CodecFactory };
    // deno-lint-ignore no-import-prefix -- test-only peer; not in the import map
    const grpc = await import("npm:@grpc/grpc-js@^1.12.0");
    // deno-lint-ignore no-import-prefix -- test-only peer; not in the import map
    const loader = await import("npm:@grpc/proto-loader@^0.7.13");
    const dir = await Deno.makeTempDir();
    const protoPath = `${dir}/health.proto`;
    await Deno.writeTextFile(protoPath, HEALTH_PROTO);
    const def = loader.loadSync(protoPath, { enums: String });
    // deno-lint-ignore no-explicit-any
    const health = (grpc.loadPackageDefinition(def) as any).grpc.health.v1.Health;
    const statuses = new Map<string, string>([["", "SERVING"], ["svc.A", "SERVING"]]);
    const seen: string[] = [];
    const server = new grpc.Server();
    server.addService(health.service, {
      // deno-lint-ignore no-explicit-any
      Check(call: any, cb: any) {
        seen.push(call.request.service);
        const s = statuses.get(call.request.service);
        if (s === undefined) cb({ code: grpc.status.NOT_FOUND, details: "unknown service" });
        else cb(null, { status: s });
      },
    });
    const port = await new Promise<number>((res, rej) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => e ? rej(e) : res(p))
    );
    const { hc, hosts, stats } = grpcChecker(grpcCheckConfig({ service_name: "svc.A" }), [port], http2CodecFactory);
    const host = hosts[0]!;
    try {
      await hc.firstRound();
      assert(host.healthy, host.healthFlagsText);
      assertEquals(seen[0], "svc.A");
      statuses.set("svc.A", "NOT_SERVING");
      await waitFor(() => !host.healthy, 3000, "unhealthy on NOT_SERVING");
      statuses.set("svc.A", "SERVING");
      await waitFor(() => host.healthy, 3000, "healthy again");
      statuses.delete("svc.A");
      await waitFor(() => !host.healthy, 3000, "unhealthy on NOT_FOUND");
      statuses.set("svc.A", "SERVING");
      await waitFor(() => host.healthy, 3000, "healthy again");
      server.forceShutdown();
      await waitFor(() => !host.healthy, 3000, "unhealthy with the server down");
      assert(stats.get("cluster.svc.health_check.network_failure") >= 2);
    } finally {
      hc.stop();
      server.forceShutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
