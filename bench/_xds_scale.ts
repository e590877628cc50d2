/**
 * The driver of `bench/xds.sh`: xDS at scale against a running Ferry, state of the world (`GRPC`) and delta
 * (`DELTA_GRPC`), each mode with a fresh Ferry (`deno run -A main.ts -c <bootstrap>`, its own process, pinned with
 * `--pin-server`). This process is the ADS server (`_xds_cp.ts`) and the measurer; `wrk` (pinned with `--pin-client`)
 * sends a steady, rate-capped load to a static listener that answers with a `direct_response` and has nothing to do
 * with the pushed config (the "unrelated listener").
 *
 * Per mode:
 * 1. **Push**: 10,000 EDS clusters (one endpoint each) with their ClusterLoadAssignments, and one
 *    RouteConfiguration of 100 virtual hosts × 100 routes (one route per cluster) referenced by an LDS listener via
 *    RDS, all at once. Time from the push to the ACK of each type (for EDS and RDS: the ACK of a response holding
 *    every resource), Ferry's RSS (`VmRSS`) before and after, wrk's p99 and max through the unrelated listener
 *    during the push. Then one request through the pushed listener must reach cluster c0 (whose endpoint is the
 *    unrelated listener): the config is applied, not only ACKed.
 * 2. **Churn**: `--rate` endpoint changes per second for `--duration` s, as `--pushes` pushes per second each moving
 *    the endpoint of rate/pushes clusters to another port (SotW resends all 10,000 assignments per push, delta only
 *    the changed ones). Achieved change rate (changes ACKed / time), ACK latency per push (to the first ACK of a
 *    version that includes it), Ferry's CPU % (utime+stime from `/proc/<pid>/stat`), wrk's p99 and max meanwhile.
 *
 * Every loop is bounded in count and in time. Prints one block per mode and a summary table.
 *
 *   deno run -A bench/_xds_scale.ts --dir DIR [--modes sotw,delta] [--clusters 10000] [--duration 30]
 *     [--rate 1000] [--pushes 10] [--wrk-conns 10] [--wrk-delay-ms 10] [--pin-server "taskset -c 0"]
 *     [--pin-client "taskset -c 1"] [--ferry-cmd "deno run -A main.ts"] [--ferry-args "--concurrency 1"]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { CLUSTER, encodeAny, ENDPOINT, LISTENER, ROUTE } from "../xds/proto.ts";
import { type AckEvent, BenchControlPlane, type ServedResource } from "./_xds_cp.ts";
import { Inspector, summarize } from "./_xds_profile.ts";

type Obj = Record<string, unknown>;
type Mode = "sotw" | "delta";

const HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const ADS = { ads: {}, resource_api_version: "V3" };
const SHORT: Record<string, string> = { [LISTENER]: "lds", [ROUTE]: "rds", [CLUSTER]: "cds", [ENDPOINT]: "eds" };

const { values: opt } = parseArgs({
  args: Deno.args,
  options: {
    dir: { type: "string" },
    modes: { type: "string", default: "sotw,delta" },
    clusters: { type: "string", default: "10000" },
    duration: { type: "string", default: "30" },
    rate: { type: "string", default: "1000" },
    pushes: { type: "string", default: "10" },
    "wrk-conns": { type: "string", default: "10" },
    "wrk-delay-ms": { type: "string", default: "10" },
    "pin-server": { type: "string", default: "" },
    "pin-client": { type: "string", default: "" },
    "ferry-cmd": { type: "string", default: "deno run -A main.ts" },
    "ferry-args": { type: "string", default: "" },
    "ack-timeout": { type: "string", default: "180" },
    profile: { type: "boolean", default: false },
  },
});
const DIR = opt.dir ?? Deno.makeTempDirSync({ prefix: "ferry-xds-" });
const MODES = opt.modes.split(",").map((m) => m.trim()).filter((m) => m !== "") as Mode[];
for (const m of MODES) if (m !== "sotw" && m !== "delta") throw new Error(`--modes: unknown mode "${m}"`);
const N = int("clusters", 1, 100_000);
const VHOSTS = Math.max(1, Math.round(Math.sqrt(N)));
const DURATION_S = int("duration", 1, 600);
const RATE = int("rate", 1, 1_000_000);
const PUSHES = int("pushes", 1, 100);
const WRK_CONNS = int("wrk-conns", 1, 1000);
const WRK_DELAY_MS = int("wrk-delay-ms", 0, 10_000);
const ACK_TIMEOUT_MS = int("ack-timeout", 1, 3600) * 1000;
const PROFILE = opt.profile;
const ROOT = new URL("..", import.meta.url).href;
const PIN_SERVER = words(opt["pin-server"]);
const PIN_CLIENT = words(opt["pin-client"]);

function int(name: keyof typeof opt, min: number, max: number): number {
  const v = Number(opt[name]);
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`--${name}: expected a whole number ${min}..${max}`);
  return v;
}

function words(s: string): string[] {
  return s.split(/\s+/).filter((w) => w !== "");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

// ---- /proc ----

function rssKib(pid: number): number {
  const m = /^VmRSS:\s+(\d+)/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Number(m[1]) : 0;
}

/** CPU time of the process and time its threads waited for a CPU while runnable, in ms (`/proc/<pid>/task/<tid>/schedstat`). */
interface Sched {
  readonly cpuMs: number;
  readonly waitMs: number;
}

function sched(pid: number): Sched {
  let cpu = 0;
  let wait = 0;
  for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const [c, w] = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/schedstat`).split(" ");
      cpu += Number(c);
      wait += Number(w);
    } catch { /* the thread exited */ }
  }
  return { cpuMs: cpu / 1e6, waitMs: wait / 1e6 };
}

function since(a: Sched, b: Sched): Sched {
  return { cpuMs: b.cpuMs - a.cpuMs, waitMs: b.waitMs - a.waitMs };
}

/** V8 heap used + external memory in MiB from the admin `/memory`, or NaN. */
async function heapMib(adminPort: number): Promise<number> {
  const r = await get(`http://127.0.0.1:${adminPort}/memory`);
  try {
    const j = JSON.parse(r.body) as { allocated: string; external: string };
    return (Number(j.allocated) + Number(j.external)) / 1048576;
  } catch {
    return NaN;
  }
}

/** CPUs online (navigator.hardwareConcurrency counts only those this process is pinned to). */
function cpuCount(): number {
  try {
    let n = 0;
    for (const part of Deno.readTextFileSync("/sys/devices/system/cpu/online").trim().split(",")) {
      const [a, b] = part.split("-").map(Number);
      n += b === undefined ? 1 : b - a! + 1;
    }
    return n;
  } catch {
    return navigator.hardwareConcurrency;
  }
}

function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

// ---- wrk ----

const WRK_LUA = `
local d = tonumber(os.getenv("XDS_WRK_DELAY_MS") or "0")
if d > 0 then function delay() return d end end
function done(summary, latency, requests)
  local over = 0
  local ok = pcall(function()
    for i = 1, #latency do
      local v, c = latency(i)
      if v > 50000 then over = over + c end
    end
  end)
  if not ok then over = -1 end
  local e = summary.errors
  io.write(string.format("XDSWRK n=%d errors=%d p50=%d p99=%d p999=%d max=%d over50=%d kinds=%d/%d/%d/%d/%d\\n",
    summary.requests, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max, over,
    e.connect, e.read, e.write, e.status, e.timeout))
end
`;

/** What one wrk run saw; latencies in ms. */
interface WrkResult {
  readonly requests: number;
  readonly errors: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  /** Requests slower than 50 ms (-1 when wrk's Lua could not count them). */
  readonly over50: number;
  /** Errors by kind: connect/read/write/status (non-2xx/3xx)/timeout. */
  readonly errorKinds: string;
  readonly seconds: number;
}

/** A running wrk; `stop()` sends SIGINT (wrk then prints its results) and parses them. */
interface Wrk {
  stop(): Promise<WrkResult>;
}

function startWrk(url: string, maxSeconds: number): Wrk {
  const lua = `${DIR}/xds_wrk.lua`;
  Deno.writeTextFileSync(lua, WRK_LUA);
  const cmd = [...PIN_CLIENT, "wrk", "-t1", `-c${WRK_CONNS}`, `-d${maxSeconds}s`, "--timeout", "30s", "-s", lua, url];
  const child = new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    env: { XDS_WRK_DELAY_MS: String(WRK_DELAY_MS) },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const t0 = performance.now();
  const out = child.output();
  return {
    async stop() {
      try {
        child.kill("SIGINT");
      } catch { /* exited */ }
      // wrk answers SIGINT only once its connections are served: after a stall of Ferry that took 12 s.
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* exited */ }
      }, 60_000);
      const o = await out;
      clearTimeout(timer);
      const text = new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr);
      const m = /XDSWRK n=(\d+) errors=(\d+) p50=(\d+) p99=(\d+) p999=(\d+) max=(\d+) over50=(-?\d+) kinds=(\S+)/
        .exec(text);
      if (!m) throw new Error(`wrk printed no result: ${text.trim().slice(0, 400)}`);
      const n = m.slice(1).map(Number);
      return {
        requests: n[0]!,
        errors: n[1]!,
        p50: n[2]! / 1000,
        p99: n[3]! / 1000,
        p999: n[4]! / 1000,
        max: n[5]! / 1000,
        over50: n[6]!,
        errorKinds: m[8]!,
        seconds: (performance.now() - t0) / 1000,
      };
    },
  };
}

// ---- resources ----

function clusterJson(i: number): Obj {
  return { name: `c${i}`, type: "EDS", connect_timeout: "1s", eds_cluster_config: { eds_config: ADS } };
}

function assignmentJson(i: number, port: number): Obj {
  return {
    cluster_name: `c${i}`,
    endpoints: [{
      lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } }],
    }],
  };
}

function listenerJson(port: number): Obj {
  return {
    name: "pushed",
    address: { socket_address: { address: "127.0.0.1", port_value: port } },
    filter_chains: [{
      filters: [{
        name: "envoy.filters.network.http_connection_manager",
        typed_config: {
          "@type": HCM,
          stat_prefix: "pushed",
          rds: { route_config_name: "routes", config_source: ADS },
          http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } }],
        },
      }],
    }],
  };
}

/** VHOSTS virtual hosts `h<v>.bench`, routes `/r<k>/` → cluster c<v*per+k>, N routes in all. */
function routesJson(): Obj {
  const per = Math.ceil(N / VHOSTS);
  const virtual_hosts: Obj[] = [];
  for (let v = 0; v * per < N; v++) {
    const routes: Obj[] = [];
    for (let k = 0; k < per && v * per + k < N; k++) {
      routes.push({ match: { prefix: `/r${k}/` }, route: { cluster: `c${v * per + k}` } });
    }
    virtual_hosts.push({ name: `vh${v}`, domains: [`h${v}.bench`], routes });
  }
  return { name: "routes", virtual_hosts };
}

let generation = 0;
function served(typeUrl: string, json: Obj): ServedResource {
  return { any: { type_url: typeUrl, value: encodeAny(typeUrl, json) }, version: `g${++generation}` };
}

/** A port nothing listens on for endpoint i at churn generation g (connections to it are refused). */
function deadPort(i: number, g: number): number {
  return 40000 + ((i * 7 + g * 13) % 20000);
}

function bootstrap(mode: Mode, ports: { admin: number; static: number; cp: number }): Obj {
  return {
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: ports.admin } } },
    node: { id: `ferry-bench-${mode}`, cluster: "bench" },
    dynamic_resources: {
      ads_config: {
        api_type: mode === "sotw" ? "GRPC" : "DELTA_GRPC",
        transport_api_version: "V3",
        grpc_services: [{ envoy_grpc: { cluster_name: "xds" } }],
        set_node_on_first_message_only: true,
      },
      lds_config: { ...ADS, initial_fetch_timeout: "30s" },
      cds_config: { ...ADS, initial_fetch_timeout: "30s" },
    },
    static_resources: {
      listeners: [{
        name: "unrelated",
        address: { socket_address: { address: "127.0.0.1", port_value: ports.static } },
        filter_chains: [{
          filters: [{
            name: "envoy.filters.network.http_connection_manager",
            typed_config: {
              "@type": HCM,
              stat_prefix: "unrelated",
              route_config: {
                name: "unrelated",
                virtual_hosts: [{
                  name: "all",
                  domains: ["*"],
                  routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "ok" } } }],
                }],
              },
              http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } }],
            },
          }],
        }],
      }],
      clusters: [{
        name: "xds",
        type: "STATIC",
        connect_timeout: "1s",
        load_assignment: {
          cluster_name: "xds",
          endpoints: [{
            lb_endpoints: [{
              endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: ports.cp } } },
            }],
          }],
        },
      }],
    },
  };
}

// ---- Ferry ----

interface Ferry {
  readonly pid: number;
  readonly log: string;
  alive(): boolean;
  stop(): Promise<void>;
}

const children = new Set<Deno.ChildProcess>();
function killAll(): void {
  for (const c of children) {
    try {
      c.kill("SIGKILL");
    } catch { /* gone */ }
  }
}
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(sig, () => {
    killAll();
    Deno.exit(130);
  });
}

function startFerry(mode: Mode, configFile: string, inspectPort: number | undefined): Ferry {
  const log = `${DIR}/ferry-${mode}.log`;
  const ferryCmd = words(opt["ferry-cmd"]);
  const run = ferryCmd.indexOf("run");
  if (inspectPort !== undefined) {
    if (run < 0) throw new Error("--profile needs a --ferry-cmd of the form 'deno run ...'");
    ferryCmd.splice(run + 1, 0, `--inspect=127.0.0.1:${inspectPort}`);
  }
  const cmd = [...PIN_SERVER, ...ferryCmd, "-c", configFile, ...words(opt["ferry-args"])];
  const quoted = cmd.map((w) => `'${w.replaceAll("'", `'\\''`)}'`).join(" ");
  // sh execs the command: its pid is Ferry's (taskset execs too), which /proc readings need.
  const child = new Deno.Command("sh", {
    args: ["-c", `exec ${quoted} >'${log}' 2>&1`],
    cwd: new URL("..", import.meta.url).pathname,
    stdin: "null",
  }).spawn();
  children.add(child);
  Deno.writeTextFileSync(`${DIR}/pids`, `${child.pid}\n`, { append: true });
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  return {
    pid: child.pid,
    log,
    alive: () => !exited,
    async stop() {
      // SIGKILL, not a drain: Ferry's GOAWAY on the ADS stream made Deno's nghttp2 abort this process once
      // (find_stream_on_goaway_func assertion in the grpc-js server), losing the results.
      if (!exited) {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 5_000);
      await status;
      clearTimeout(timer);
      children.delete(child);
    },
  };
}

function tail(file: string, lines: number): string {
  try {
    return Deno.readTextFileSync(file).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 5_000);
  try {
    const res = await fetch(url, { signal: ac.signal });
    return { status: res.status, body: await res.text() };
  } catch (e) {
    return { status: 0, body: e instanceof Error ? e.message : String(e) };
  } finally {
    clearTimeout(timer);
  }
}

/** One HTTP/1.1 GET over a raw socket (fetch cannot set Host): "<status> <body start>", or the error. */
async function rawGet(port: number, host: string, path: string): Promise<string> {
  let conn: Deno.TcpConn | undefined;
  const timer = setTimeout(() => conn?.close(), 5_000);
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`));
    let text = "";
    const buf = new Uint8Array(4096);
    for (let i = 0; i < 64; i++) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    const status = /^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? "?";
    const body = text.slice(text.indexOf("\r\n\r\n") + 4).trim().slice(0, 60);
    return `${status} ${body}`;
  } catch (e) {
    return `error ${e instanceof Error ? e.message : String(e)}`;
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch { /* closed */ }
  }
}

// ---- statistics ----

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const f1 = (v: number) => Number.isFinite(v) ? v.toFixed(1) : "-";
const f0 = (v: number) => Number.isFinite(v) ? v.toFixed(0) : "-";
const mib = (kib: number) => (kib / 1024).toFixed(1);

// ---- one mode ----

interface ModeResult {
  readonly mode: Mode;
  readonly ackMs: Readonly<Record<string, number>>;
  readonly pushWriteMs: number;
  readonly pushSched: Sched;
  readonly encodeMs: number;
  readonly rssBefore: number;
  readonly rssAfter: number;
  readonly rssChurn: number;
  readonly baseline: WrkResult;
  readonly pushWrk: WrkResult;
  readonly routed: string;
  readonly churn: {
    readonly changes: number;
    readonly applied: number;
    readonly seconds: number;
    readonly pushes: number;
    readonly responses: number;
    readonly nacks: number;
    readonly p50: number;
    readonly p99: number;
    readonly max: number;
    readonly cpuPct: number;
    /** Time Ferry's threads were runnable but waited for a CPU (other work on the machine), % of the window. */
    readonly waitPct: number;
    /** Ferry's CPU ms during churn per EDS response it got (robust to other work on the machine). */
    readonly cpuPerResponse: number;
    readonly idleCpuPct: number;
    readonly wrk: WrkResult;
    readonly writeMs: number;
  };
}

async function runMode(mode: Mode): Promise<ModeResult> {
  const cp = new BenchControlPlane();
  const acks: AckEvent[] = [];
  let ackWaiter: (() => void) | undefined;
  cp.onAck = (e) => {
    if (acks.length < 100_000) acks.push(e);
    if (e.nack !== undefined) console.log(`  ${mode}: NACK of ${SHORT[e.typeUrl]} ${e.version}: ${e.nack}`);
    ackWaiter?.();
  };
  /** Resolves when `cond` holds for the ACKs so far (checked on each ACK), or rejects after `ms`. */
  const until = async (what: string, cond: () => boolean, ms: number): Promise<void> => {
    const deadline = performance.now() + ms;
    while (!cond()) {
      if (!ferry.alive()) throw new Error(`Ferry exited while waiting for ${what}:\n${tail(ferry.log, 20)}`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`${mode}: no ${what} after ${ms} ms`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 500));
        ackWaiter = () => {
          clearTimeout(t);
          r();
        };
      });
      ackWaiter = undefined;
    }
  };
  const acked = (t: string, version: string, held: number) =>
    acks.find((e) => e.typeUrl === t && e.version === version && e.nack === undefined && e.held >= held);

  const cpPort = await cp.listen(0);
  const ports = { admin: freePort(), static: freePort(), pushed: freePort(), cp: cpPort };
  const staticUrl = `http://127.0.0.1:${ports.static}/`;
  // The initial config: nothing dynamic (Ferry's initial fetch completes with empty LDS and CDS).
  for (const t of [CLUSTER, LISTENER]) cp.update(t, "v0", new Map());
  const config = `${DIR}/ferry-${mode}.json`;
  Deno.writeTextFileSync(config, JSON.stringify(bootstrap(mode, ports), null, 1));
  const inspectPort = PROFILE ? freePort() : undefined;
  const ferry = startFerry(mode, config, inspectPort);
  const inspector = inspectPort === undefined ? undefined : await Inspector.connect(inspectPort);
  /** Profiles `fn` when --profile is on: the summary goes to DIR/profile-<mode>-<what>.txt and its head is printed. */
  const profiled = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    if (!inspector) return await fn();
    await inspector.start(what === "push" ? 200 : 500);
    const r = await fn();
    const prof = await inspector.stop();
    const text = summarize(prof, ROOT, 25);
    Deno.writeTextFileSync(`${DIR}/profile-${mode}-${what}.txt`, text);
    Deno.writeTextFileSync(`${DIR}/profile-${mode}-${what}.cpuprofile`, JSON.stringify(prof));
    console.log(
      `${mode}: profile of the ${what} (${DIR}/profile-${mode}-${what}.txt):\n` +
        text.split("\n").slice(0, 28).map((l) => `  ${l}`).join("\n"),
    );
    return r;
  };
  try {
    const ready = performance.now() + 60_000;
    while ((await get(staticUrl)).status !== 200) {
      if (!ferry.alive()) throw new Error(`Ferry exited during startup:\n${tail(ferry.log, 20)}`);
      if (performance.now() > ready) throw new Error(`Ferry not ready after 60 s:\n${tail(ferry.log, 20)}`);
      await sleep(200);
    }
    await until("ACK of the initial cds/lds", () => !!acked(CLUSTER, "v0", 0) && !!acked(LISTENER, "v0", 0), 30_000);
    console.log(
      `${mode}: Ferry pid ${ferry.pid} ready (admin :${ports.admin}, unrelated :${ports.static}, ` +
        `ADS :${cpPort}); load average ${loadAverage()}`,
    );

    // Warm-up (JIT on the data path), then a baseline of the same load without pushes.
    const warm = startWrk(staticUrl, 30);
    await sleep(3000);
    await warm.stop();
    const cpuB0 = sched(ferry.pid);
    const tB0 = performance.now();
    const base = startWrk(staticUrl, 30);
    await sleep(4000);
    const baseline = await base.stop();
    const idleCpuPct = since(cpuB0, sched(ferry.pid)).cpuMs / (performance.now() - tB0) * 100;

    // 1. The push.
    const e0 = performance.now();
    const cds = new Map<string, ServedResource>();
    const eds = new Map<string, ServedResource>();
    const gen = new Array<number>(N).fill(0);
    for (let i = 0; i < N; i++) {
      cds.set(`c${i}`, served(CLUSTER, clusterJson(i)));
      eds.set(`c${i}`, served(ENDPOINT, assignmentJson(i, i === 0 ? ports.static : deadPort(i, 0))));
    }
    const lds = new Map([["pushed", served(LISTENER, listenerJson(ports.pushed))]]);
    const rds = new Map([["routes", served(ROUTE, routesJson())]]);
    const encodeMs = performance.now() - e0;
    await sleep(1000);
    const rssBefore = rssKib(ferry.pid);
    const heapBefore = await heapMib(ports.admin);
    const pushWrkRun = startWrk(staticUrl, 300);
    await sleep(1000);
    const want: [string, number][] = [[CLUSTER, N], [ENDPOINT, N], [LISTENER, 1], [ROUTE, 1]];
    let t0 = 0;
    let pushWriteMs = 0;
    const pushSched = await profiled("push", async () => {
      const s0 = sched(ferry.pid);
      t0 = performance.now();
      pushWriteMs += cp.update(CLUSTER, "v1", cds);
      pushWriteMs += cp.update(ENDPOINT, "v1", eds);
      pushWriteMs += cp.update(LISTENER, "v1", lds);
      pushWriteMs += cp.update(ROUTE, "v1", rds);
      await until("ACK of the push (all four types)", () => want.every(([t, n]) => acked(t, "v1", n)), ACK_TIMEOUT_MS);
      return since(s0, sched(ferry.pid));
    });
    const ackMs: Record<string, number> = {};
    for (const [t, n] of want) ackMs[SHORT[t]!] = acked(t, "v1", n)!.at - t0;
    await sleep(1000);
    const pushWrk = await pushWrkRun.stop();
    // Applied, not only ACKed: h0.bench/r0/ → route → cluster c0 → its endpoint, the unrelated listener.
    let routed = "";
    const routeDeadline = performance.now() + 10_000;
    while (performance.now() < routeDeadline) {
      routed = await rawGet(ports.pushed, "h0.bench", "/r0/x");
      if (routed === "200 ok") break;
      await sleep(200);
    }
    await sleep(2000);
    const rssAfter = rssKib(ferry.pid);
    const heapAfter = await heapMib(ports.admin);
    if (inspector) {
      await inspector.send("HeapProfiler.collectGarbage");
      console.log(
        `${mode}: after the push and a forced full GC: V8 heap + external ` +
          `${f1(await heapMib(ports.admin))} MiB, RSS ${mib(rssKib(ferry.pid))} MiB`,
      );
    }
    console.log(
      `${mode}: push of ${N} clusters + ${N} assignments + ${N} routes (${VHOSTS} vhosts): ` +
        `ACK cds ${f0(ackMs.cds!)} ms, eds ${f0(ackMs.eds!)} ms, lds ${f0(ackMs.lds!)} ms, rds ${f0(ackMs.rds!)} ms ` +
        `(control plane: encode ${f0(encodeMs)} ms before the push, serialize+write ${f0(pushWriteMs)} ms)`,
    );
    console.log(
      `${mode}: RSS ${mib(rssBefore)} -> ${mib(rssAfter)} MiB (V8 heap + external ${f1(heapBefore)} -> ` +
        `${f1(heapAfter)} MiB); GET h0.bench/r0/ via the pushed listener: ` +
        `${routed}`,
    );
    console.log(
      `${mode}: unrelated listener during the push: p99 ${f1(pushWrk.p99)} ms, max ${f1(pushWrk.max)} ms, ` +
        `${pushWrk.over50} of ${pushWrk.requests} over 50 ms, errors ${pushWrk.errors} ` +
        `(connect/read/write/status/timeout ${pushWrk.errorKinds}) ` +
        `(baseline without pushes: p99 ${f1(baseline.p99)} ms, max ${f1(baseline.max)} ms)`,
    );

    // 2. Churn.
    const per = Math.max(1, Math.round(RATE / PUSHES));
    const interval = 1000 / PUSHES;
    const count = DURATION_S * PUSHES;
    const pushAt: number[] = [];
    let cursor = 0;
    const writeMs0 = cp.writeMs;
    const responses0 = cp.responses;
    const nacks0 = acks.filter((e) => e.nack !== undefined).length;
    const lastVersion = (e: AckEvent) => e.typeUrl === ENDPOINT && e.nack === undefined && /^e\d+$/.test(e.version);
    await sleep(1000);
    const churnWrkRun = startWrk(staticUrl, DURATION_S + 120);
    await sleep(1000);
    let c0 = 0;
    let cEnd = 0;
    const churnSched = await profiled("churn", async () => {
      const cpu0 = sched(ferry.pid);
      c0 = performance.now();
      const hardStop = c0 + (DURATION_S + 30) * 1000;
      for (let k = 1; k <= count && performance.now() < hardStop; k++) {
        const due = c0 + (k - 1) * interval;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        const changes = new Map<string, ServedResource>();
        for (let j = 0; j < per; j++) {
          // Cluster c0 stays put (it carries the routing check); the others take turns.
          const i = 1 + (cursor++ % (N - 1 || 1));
          gen[i] = gen[i]! + 1;
          changes.set(`c${i}`, served(ENDPOINT, assignmentJson(i, deadPort(i, gen[i]!))));
        }
        pushAt.push(performance.now());
        cp.update(ENDPOINT, `e${k}`, changes);
      }
      const last = `e${pushAt.length}`;
      await until(`ACK of eds ${last}`, () => acks.some((e) => lastVersion(e) && e.version === last), 60_000)
        .catch((e) => console.log(`  ${mode}: ${e instanceof Error ? e.message : String(e)}`));
      cEnd = performance.now();
      return since(cpu0, sched(ferry.pid));
    });
    const sent = pushAt.length;
    await sleep(500);
    const churnWrk = await churnWrkRun.stop();
    const edsAcks = acks.filter(lastVersion).map((e) => ({ k: Number(e.version.slice(1)), at: e.at }));
    const lat: number[] = [];
    let applied = 0;
    for (let k = 1; k <= sent; k++) {
      const first = edsAcks.find((a) => a.k >= k);
      if (first === undefined) continue;
      applied += per;
      lat.push(first.at - pushAt[k - 1]!);
    }
    lat.sort((a, b) => a - b);
    const seconds = (cEnd - c0) / 1000;
    const cpuPct = churnSched.cpuMs / (seconds * 1000) * 100;
    const waitPct = churnSched.waitMs / (seconds * 1000) * 100;
    const rssChurn = rssKib(ferry.pid);
    const heapChurn = await heapMib(ports.admin);
    if (inspector) {
      // Garbage or retained? Only the inspector can make Ferry collect.
      await inspector.send("HeapProfiler.collectGarbage");
      console.log(
        `${mode}: after churn and a forced full GC: V8 heap + external ${f1(await heapMib(ports.admin))} ` +
          `MiB, RSS ${mib(rssKib(ferry.pid))} MiB`,
      );
    }
    const churn = {
      changes: sent * per,
      applied,
      seconds,
      pushes: sent,
      responses: cp.responses - responses0,
      nacks: acks.filter((e) => e.nack !== undefined).length - nacks0,
      p50: percentile(lat, 50),
      p99: percentile(lat, 99),
      max: lat.length ? lat[lat.length - 1]! : NaN,
      cpuPct,
      waitPct,
      cpuPerResponse: churnSched.cpuMs / Math.max(1, cp.responses - responses0),
      idleCpuPct,
      wrk: churnWrk,
      writeMs: cp.writeMs - writeMs0,
    };
    console.log(
      `${mode}: churn ${sent} pushes x ${per} endpoint changes in ${f1(seconds)} s: ` +
        `${f0(applied / seconds)} changes/s ACKed, ${churn.responses} responses to Ferry (pushes coalesced while ` +
        `an ACK is due), ACK latency p50 ${f0(churn.p50)} ms p99 ${f0(churn.p99)} ms max ${f0(churn.max)} ms, ` +
        `NACKs ${churn.nacks}`,
    );
    console.log(
      `${mode}: Ferry CPU ${f0(cpuPct)}% during churn, runnable but waiting for a CPU ${f0(waitPct)}% ` +
        `(${f0(idleCpuPct)}% CPU with the same wrk load and no pushes), ${
          f1(churn.cpuPerResponse)
        } ms of CPU per EDS ` +
        `response; control plane serialize+write ${f0(churn.writeMs)} ms; RSS after churn ${mib(rssChurn)} MiB ` +
        `(V8 heap + external ${f1(heapChurn)} MiB)`,
    );
    console.log(
      `${mode}: unrelated listener during churn: p99 ${f1(churnWrk.p99)} ms, max ${f1(churnWrk.max)} ms, ` +
        `${churnWrk.over50} of ${churnWrk.requests} over 50 ms, errors ${churnWrk.errors} ` +
        `(${churnWrk.errorKinds})`,
    );
    const warnings = Deno.readTextFileSync(ferry.log).split("\n").filter((l) => /\]\[(warn|warning|error)\]/i.test(l));
    if (warnings.length > 0) {
      console.log(
        `${mode}: Ferry logged ${warnings.length} warning/error lines, the last:\n  ` +
          warnings.slice(-3).join("\n  "),
      );
    }
    return {
      mode,
      ackMs,
      pushWriteMs,
      pushSched,
      encodeMs,
      rssBefore,
      rssAfter,
      rssChurn,
      baseline,
      pushWrk,
      routed,
      churn,
    };
  } finally {
    // The inspector's socket is left to close with Ferry: closing it first crashed this process once (Deno 2.9.6,
    // SIGSEGV after a 10,000-cluster profile), and the profile is already taken.
    await ferry.stop();
    cp.close();
  }
}

// ---- main ----

console.log(
  `xds: ${N} EDS clusters (1 endpoint each) + ${N} routes, modes ${MODES.join(", ")}; churn ${RATE} ` +
    `endpoint changes/s as ${PUSHES} pushes/s for ${DURATION_S} s; wrk -t1 -c${WRK_CONNS}` +
    (WRK_DELAY_MS > 0
      ? ` with ${WRK_DELAY_MS} ms between requests per connection (<= ${
        Math.round(WRK_CONNS * 1000 / WRK_DELAY_MS)
      } req/s)`
      : " (closed loop)") +
    `; load average ${loadAverage()} on ${cpuCount()} cores (other work skews every number)`,
);
const results: ModeResult[] = [];
let failed = false;
for (const mode of MODES) {
  try {
    results.push(await runMode(mode));
  } catch (e) {
    failed = true;
    console.log(`${mode}: FAILED: ${e instanceof Error ? e.message : String(e)}`);
  }
}

console.log(`\nsummary (targets: ACK < 2000 ms, no stall over 50 ms; load average ${loadAverage()})`);
const rows: string[][] = [[
  "mode",
  "ack_cds",
  "ack_eds",
  "ack_lds",
  "ack_rds",
  "push_cpu",
  "rss_mib",
  "push_p99",
  "push_max",
  "base_max",
  "chg/s",
  "ack_p50",
  "ack_p99",
  "cpu%",
  "wait%",
  "cpu/resp",
  "churn_p99",
  "churn_max",
]];
for (const r of results) {
  rows.push([
    r.mode,
    f0(r.ackMs.cds!),
    f0(r.ackMs.eds!),
    f0(r.ackMs.lds!),
    f0(r.ackMs.rds!),
    f0(r.pushSched.cpuMs),
    `${mib(r.rssBefore)}->${mib(r.rssAfter)}`,
    f1(r.pushWrk.p99),
    f1(r.pushWrk.max),
    f1(r.baseline.max),
    f0(r.churn.applied / r.churn.seconds),
    f0(r.churn.p50),
    f0(r.churn.p99),
    f0(r.churn.cpuPct),
    f0(r.churn.waitPct),
    f1(r.churn.cpuPerResponse),
    f1(r.churn.wrk.p99),
    f1(r.churn.wrk.max),
  ]);
}
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
for (const r of rows) console.log(r.map((v, c) => v.padStart(widths[c]!)).join(" "));
console.log(
  "(ms unless named; ack_* from the push to the ACK of a response holding every resource; push_*/churn_* " +
    "wrk latency through the unrelated listener; base_max without pushes; push_cpu Ferry's CPU ms from the push to " +
    "the last ACK; chg/s endpoint changes ACKed per second; cpu% Ferry's CPU during churn, wait% the time its " +
    "threads were runnable but got no CPU; cpu/resp Ferry's CPU ms per EDS response during churn)",
);
for (const r of results) {
  const worstAck = Math.max(...Object.values(r.ackMs));
  const stall = Math.max(r.pushWrk.max, r.churn.wrk.max);
  console.log(
    `${r.mode}: target ACK < 2000 ms: ${worstAck < 2000 ? "met" : "not met"} (${f0(worstAck)} ms); ` +
      `target no stall over 50 ms: ${stall <= 50 ? "met" : "not met"} (max ${f1(stall)} ms); ` +
      `routed via pushed config: ${r.routed}`,
  );
}
killAll();
Deno.exit(failed ? 1 : 0);
