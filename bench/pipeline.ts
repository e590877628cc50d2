/**
 * The HTTP/1 proxy pipeline without sockets: downstream bytes → connection manager → router → pool → upstream
 * codec and back, with in-memory connections that answer at once. It isolates the JavaScript cost per request
 * (parsing, filters, routing, encoding) from the kernel and the runtime's I/O, for profiling with
 * `deno run -A --v8-flags=--prof bench/pipeline.ts`.
 *
 * Usage: deno run -A bench/pipeline.ts [requests=100000]
 */
import type { ConnectionHandler, NetConnection } from "../lib/api/network.ts";
import { parseBootstrap } from "../lib/config/bootstrap.ts";
import { createRegistries } from "../lib/server/registries.ts";
import { StatsStore } from "../lib/observe/stats.ts";
import { ClusterManagerImpl } from "../lib/upstream/cluster_manager.ts";
import { http1CodecFactory } from "../codecs/http1/mod.ts";
import { httpConnectionManagerFactory } from "../filters/network/http_connection_manager.ts";

const enc = new TextEncoder();
const RESPONSE = enc.encode(
  "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Tue, 24 Nov 2026 14:00:00 GMT\r\nContent-Type: text/plain\r\n" +
    "Content-Length: 12\r\nConnection: keep-alive\r\n\r\nhello world\n",
);
const REQUEST = enc.encode(
  "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk/4.2\r\nAccept: */*\r\n\r\n",
);

let ids = 1;
/** An in-memory connection; `peer` receives what is written. */
class MemConn implements NetConnection {
  readonly id = ids++;
  readonly remoteAddress = "127.0.0.1";
  readonly remotePort = 40000 + this.id;
  readonly localAddress = "127.0.0.1";
  readonly localPort = 8080;
  readonly secure = false;
  readonly bufferedAmount = 0;
  readonly closed = false;
  readonly bytesRead = 0;
  readonly bytesWritten = 0;
  readonly done = new Promise<void>(() => {});
  handler: ConnectionHandler | undefined;
  onWrite: (d: Uint8Array) => void = () => {};
  setHandler(h: ConnectionHandler) {
    this.handler = h;
  }
  start() {}
  write(d: Uint8Array) {
    this.onWrite(d);
  }
  closeWrite() {}
  close() {}
  readDisable() {}
}

const raw = {
  static_resources: {
    listeners: [{
      name: "l",
      address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
      filter_chains: [{
        filters: [{
          name: "envoy.filters.network.http_connection_manager",
          typed_config: {
            "@type":
              "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            stat_prefix: "bench",
            ...(Deno.env.get("NOGENID") ? { generate_request_id: false } : {}),
            ...(Deno.env.get("NOTIMERS")
              ? { stream_idle_timeout: "0s", common_http_protocol_options: { idle_timeout: "0s" } }
              : {}),
            route_config: {
              virtual_hosts: [{
                name: "v",
                domains: ["*"],
                routes: [{
                  match: { prefix: "/" },
                  route: { cluster: "up", ...(Deno.env.get("NOTIMERS") ? { timeout: "0s" } : {}) },
                }],
              }],
            },
            http_filters: [{
              name: "envoy.filters.http.router",
              typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
            }],
          },
        }],
      }],
    }],
    clusters: [{
      name: "up",
      load_assignment: {
        cluster_name: "up",
        endpoints: [{
          lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: 1 } } } }],
        }],
      },
    }],
  },
};

const registries = createRegistries();
const config = parseBootstrap(raw, registries);
const stats = new StatsStore();
// The upstream: answers each request on the next microtask, like a fast server.
const cm = new ClusterManagerImpl(config.clusters, {
  stats,
  httpCodec: http1CodecFactory,
  connect: () => {
    const c = new MemConn();
    c.onWrite = () => queueMicrotask(() => c.handler?.onData(RESPONSE));
    return Promise.resolve(c);
  },
});
await cm.initialize();
const entry = config.listeners[0]!.filterChains[0]!.filters[0]!;
const down = new MemConn();
let responses = 0;
let resolveOne: (() => void) | undefined;
down.onWrite = (d) => {
  // A response ends with the 12-byte body.
  if (d[d.length - 1] === 10 && d.length >= 12) {
    responses++;
    resolveOne?.();
  }
};
const filter = httpConnectionManagerFactory.create(entry.config as never, {
  connection: down,
  continueReading() {},
}, {
  clusterManager: cm,
  stats,
  listenerName: "l",
  draining: () => false,
  bufferLimit: 1 << 20,
});
const oneRequest = () =>
  new Promise<void>((r) => {
    resolveOne = r;
    filter.onData(REQUEST, false);
  });

/** CPU seconds (user + system) of this process so far, from /proc (wall time is noisy on a shared machine). */
function cpuSeconds(): number {
  const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

const count = Number(Deno.args[0] ?? 100_000);
for (let i = 0; i < 20000; i++) await oneRequest(); // warm up
const c0 = cpuSeconds();
const t0 = performance.now();
if (Deno.env.get("SYNC")) {
  const mid = Deno.env.get("MIDSNAP");
  for (let i = 0; i < count; i++) {
    filter.onData(REQUEST, false);
    if (mid && i === count >> 1) (await import("node:v8")).writeHeapSnapshot(mid);
  }
} else for (let i = 0; i < count; i++) await oneRequest();
const wall = (performance.now() - t0) * 1000 / count;
if (Deno.env.get("HEAPSNAP")) {
  // Snapshot while the garbage of many requests may still be referenced (debugging retention).
  const { writeHeapSnapshot } = await import("node:v8");
  console.log("heap snapshot:", writeHeapSnapshot(Deno.env.get("HEAPSNAP")));
}
const cpu = (cpuSeconds() - c0) * 1e6 / count;
console.log(
  `pipeline: ${count} requests: ${cpu.toFixed(1)} µs CPU/request, ${wall.toFixed(1)} µs wall/request (JS only)`,
);
Deno.exit(0);
