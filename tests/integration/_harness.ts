/**
 * Test harness: Ferry in-process on port 0, real upstreams on loopback, and real clients (curl, raw sockets).
 * @module
 */
import { parseBootstrap } from "../../lib/config/bootstrap.ts";
import { createRegistries } from "../../lib/server/registries.ts";
import { Server } from "../../lib/server/server.ts";
import { parse as parseYaml } from "yaml";
import { setLogLevel } from "../../lib/observe/log.ts";

// Keep test output readable; failures are asserted, not read from logs.
setLogLevel("warn");

/** A running Ferry for a test. */
export interface TestFerry {
  readonly server: Server;
  /** The bound port of a listener (the first if no name). */
  port(listener?: string): number;
  /** `http://127.0.0.1:<port><path>` for a listener (the first if no name). */
  url(path?: string, listener?: string): string;
  readonly adminPort: number;
  readonly adminUrl: string;
  stop(): Promise<void>;
}

/** Starts Ferry from a YAML string or an object. Listener/admin ports may be 0. */
export async function startFerry(config: string | Record<string, unknown>): Promise<TestFerry> {
  const raw = typeof config === "string" ? parseYaml(config) : config;
  const registries = createRegistries();
  const parsed = parseBootstrap(raw, registries);
  const server = await Server.start(parsed, registries, { drainTimeMs: 2000 });
  const adminPort = server.admin?.port ?? 0;
  const port = (name?: string) => {
    const l = name ? server.listener(name) : server.listeners[0];
    if (!l) throw new Error(`no listener ${name ?? ""}`);
    return l.port;
  };
  return {
    server,
    port,
    url: (path = "/", listener?: string) => `http://127.0.0.1:${port(listener)}${path}`,
    adminPort,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    stop: () => server.drainAndStop(0),
  };
}

/**
 * A YAML listener+HCM bootstrap with the given route_config virtual hosts and clusters (YAML fragments). The
 * listener ("test", stat prefix "test") and the admin listen on port 0 unless `port` / `adminPort` are given.
 */
export function hcmBootstrap(options: {
  routes: string;
  clusters?: string;
  hcmExtra?: string;
  httpFilters?: string;
  admin?: boolean;
  port?: number;
  adminPort?: number;
  /** More route_config fields (YAML), e.g. `internal_only_headers: [x-debug]`. */
  routeConfigExtra?: string;
}): string {
  const indent = (s: string, n: number) => s.trim().split("\n").map((l) => " ".repeat(n) + l).join("\n");
  const admin = `admin:\n  address: { socket_address: { address: 127.0.0.1, port_value: ${options.adminPort ?? 0} } }`;
  return `
${options.admin === false ? "" : admin}
static_resources:
  listeners:
  - name: test
    address: { socket_address: { address: 127.0.0.1, port_value: ${options.port ?? 0} } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: test
${options.hcmExtra ? indent(options.hcmExtra, 10) : ""}
          route_config:
            name: test
${options.routeConfigExtra ? indent(options.routeConfigExtra, 12) : ""}
            virtual_hosts:
${indent(options.routes, 12)}
          http_filters:
${options.httpFilters ? indent(options.httpFilters, 10) : ""}
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
  clusters:${options.clusters ? "\n" + indent(options.clusters, 2) : " []"}
`;
}

/** `hcmBootstrap` routes: one virtual host "all" (domains `*`) whose one route takes prefix "/" to `route`. */
export function catchAllRoute(route: string): string {
  return `- name: all\n  domains: ["*"]\n  routes:\n  - match: { prefix: "/" }\n    route: ${route}`;
}

/** `hcmBootstrap` routes: one virtual host "v" (domains `[domain]`) answering every request 200 `body`. */
export function directResponseRoutes(body: string, domain = "*"): string {
  return `- name: v\n  domains: ["${domain}"]\n  routes: [{ match: { prefix: "/" }, direct_response: ` +
    `{ status: 200, body: { inline_string: ${body} } } }]`;
}

/** An HTTP connection manager (a network filter, as an object) that answers every request 200 `body`. */
export function directResponseHcm(statPrefix: string, body = "ok"): Record<string, unknown> {
  return {
    name: "envoy.filters.network.http_connection_manager",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
      stat_prefix: statPrefix,
      route_config: {
        virtual_hosts: [{
          name: "all",
          domains: ["*"],
          routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: body } } }],
        }],
      },
      http_filters: [{
        name: "envoy.filters.http.router",
        typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
      }],
    },
  };
}

/** A STATIC cluster YAML fragment. */
export function staticCluster(name: string, ports: number[], extra = ""): string {
  const eps = ports.map((p) =>
    `      - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${p} } } }`
  )
    .join("\n");
  return `- name: ${name}
  type: STATIC
  connect_timeout: 1s
${extra ? extra.trim().split("\n").map((l) => "  " + l).join("\n") + "\n" : ""}  load_assignment:
    cluster_name: ${name}
    endpoints:
    - lb_endpoints:
${eps}`;
}

/** What an upstream handler sees. */
export interface SeenRequest {
  method: string;
  url: URL;
  headers: Headers;
  body: string;
}

/** A real HTTP/1.1 upstream (Deno.serve) recording requests. */
export interface TestUpstream {
  readonly port: number;
  readonly requests: SeenRequest[];
  close(): Promise<void>;
}

/** Starts an upstream answering with `handler` (default: 200 "ok <path>"). */
export function startUpstream(
  handler?: (req: SeenRequest) => Response | Promise<Response>,
): Promise<TestUpstream> {
  const requests: SeenRequest[] = [];
  return new Promise((resolve) => {
    const srv = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: () => {},
    }, async (req) => {
      const seen: SeenRequest = {
        method: req.method,
        url: new URL(req.url),
        headers: req.headers,
        body: await req.text(),
      };
      requests.push(seen);
      return handler ? await handler(seen) : new Response(`ok ${seen.url.pathname}`);
    });
    resolve({
      port: srv.addr.port,
      requests,
      close: async () => {
        await srv.shutdown();
      },
    });
  });
}

/** A raw TCP upstream: `onConn` gets each accepted connection. */
export function startRawServer(onConn: (c: Deno.TcpConn) => void | Promise<void>): { port: number; close(): void } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.TcpConn>();
  (async () => {
    for await (const c of l) {
      conns.add(c);
      Promise.resolve(onConn(c)).catch(() => {}).finally(() => conns.delete(c));
    }
  })().catch(() => {});
  return {
    port: (l.addr as Deno.NetAddr).port,
    close() {
      try {
        l.close();
      } catch { /* closed */ }
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 50 ms until it holds; throws naming `what` after `timeoutMs` (default 10 s). */
export async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Reads a request head (up to the blank line; less if the peer closes first) from a raw upstream connection. */
export async function readHead(c: Deno.Conn): Promise<string> {
  const dec = new TextDecoder();
  let head = "";
  const buf = new Uint8Array(16384);
  while (!head.includes("\r\n\r\n")) {
    const n = await c.read(buf);
    if (n === null) break;
    head += dec.decode(buf.subarray(0, n));
  }
  return head;
}

/** Result of running curl. */
export interface CurlResult {
  code: number;
  status: number;
  headers: Record<string, string>;
  body: string;
  stderr: string;
}

/** Runs curl with `args` against `url`; parses the (last) response's status and headers. */
export async function curl(url: string, args: string[] = []): Promise<CurlResult> {
  const out = await new Deno.Command("curl", {
    args: ["-sS", "-D", "-", "--max-time", "10", ...args, url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  // Skip 100 Continue and other interim heads.
  let rest = text;
  let head = "";
  for (;;) {
    const i = rest.indexOf("\r\n\r\n");
    if (i < 0) break;
    head = rest.slice(0, i);
    rest = rest.slice(i + 4);
    if (!/^HTTP\/[\d.]+ 1\d\d/.test(head)) break;
  }
  const lines = head.split("\r\n");
  const status = Number(lines[0]?.split(" ")[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const c = l.indexOf(":");
    if (c > 0) headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
  }
  return { code: out.code, status, headers, body: rest, stderr: new TextDecoder().decode(out.stderr) };
}

/** Sends raw bytes on a new connection and reads until the peer closes or `untilIdleMs` passes without data. */
export async function rawRequest(port: number, data: string | Uint8Array, untilIdleMs = 500): Promise<string> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await c.write(typeof data === "string" ? new TextEncoder().encode(data) : data);
    return await readAll(c, untilIdleMs);
  } finally {
    try {
      c.close();
    } catch { /* closed */ }
  }
}

/** A read still in flight when `readAll` gave up waiting; the next `readAll` on that conn takes it over. */
const pendingReads = new WeakMap<Deno.Conn, { p: Promise<number | null>; buf: Uint8Array }>();

/** Reads from `c` until EOF or no data for `idleMs`. Safe to call repeatedly on one connection. */
export async function readAll(c: Deno.Conn, idleMs = 500): Promise<string> {
  let out = "";
  const dec = new TextDecoder();
  for (;;) {
    let pr = pendingReads.get(c);
    if (!pr) {
      const buf = new Uint8Array(65536);
      pr = { p: c.read(buf).catch(() => null), buf };
      pendingReads.set(c, pr);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([pr.p, new Promise<"idle">((r) => timer = setTimeout(() => r("idle"), idleMs))]);
    clearTimeout(timer);
    if (n === "idle") return out;
    pendingReads.delete(c);
    if (n === null) return out;
    out += dec.decode(pr.buf.subarray(0, n));
  }
}

/** Reads one stat's value from the admin `/stats?format=json`. */
export async function stat(ferry: TestFerry, name: string): Promise<number | undefined> {
  const r = await fetch(
    `${ferry.adminUrl}/stats?format=json&filter=${encodeURIComponent(`^${name.replace(/\./g, "\\.")}$`)}`,
  );
  const j = await r.json() as { stats: { name?: string; value?: number }[] };
  return j.stats.find((s) => s.name === name)?.value;
}

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/**
 * `args` with `--concurrency 1` added unless they name a concurrency (or run a subcommand): as Envoy's
 * integration tests, one event loop, so pool and connection counters see every request.
 */
export function oneLoop(args: string[]): string[] {
  if (args[0] === "certs" || args.some((a) => a === "--concurrency" || a.startsWith("--concurrency="))) return args;
  return [...args, "--concurrency", "1"];
}

/**
 * Runs `deno run -A main.ts ...args` (in `cwd` if given) to its exit; the exit code and the output. With
 * `defaultConcurrency`, no `--concurrency 1` is added (see {@link oneLoop}).
 */
export async function runFerry(
  args: string[],
  options: { cwd?: string; defaultConcurrency?: boolean } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...(options.defaultConcurrency ? args : oneLoop(args))],
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** `main.ts` running as a child process; its stdout and stderr are collected as they arrive. */
export interface FerryProcess {
  readonly child: Deno.ChildProcess;
  /** Everything written to stderr so far (the log). */
  readonly stderr: string;
  /**
   * Waits until the log matches `pattern` (a string: contains it; a function: returns true) and returns the
   * match (the regular expression's groups; `[log]` for a function); throws if the process exits first or
   * `timeoutMs` passes.
   */
  waitForLog(
    pattern: RegExp | string | ((log: string) => boolean),
    timeoutMs?: number,
  ): Promise<string[]>;
  /** Sends SIGTERM (at once), then waits for the exit and the rest of the output. */
  stop(): Promise<{ code: number; stdout: string; stderr: string }>;
  /** SIGKILL if still running, and waits for the exit (for `finally`). */
  kill(): Promise<void>;
}

/**
 * Runs `deno run -A main.ts ...args` (with `env` added); with `adminPort`, resolves once `GET /ready` on that port
 * answers 200 (throws, killing the process, if it exits or is not ready within `timeoutMs`). With
 * `defaultConcurrency`, no `--concurrency 1` is added (see {@link oneLoop}).
 */
export async function spawnFerry(
  args: string[],
  options: { adminPort?: number; timeoutMs?: number; env?: Record<string, string>; defaultConcurrency?: boolean } = {},
): Promise<FerryProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...(options.defaultConcurrency ? args : oneLoop(args))],
    ...(options.env ? { env: options.env } : {}),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = { stdout: "", stderr: "" };
  const pump = async (stream: ReadableStream<Uint8Array>, key: "stdout" | "stderr") => {
    const dec = new TextDecoder();
    for await (const chunk of stream) out[key] += dec.decode(chunk, { stream: true });
  };
  const pumped = Promise.all([pump(child.stdout, "stdout"), pump(child.stderr, "stderr")]).catch(() => {});
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const p: FerryProcess = {
    child,
    get stderr() {
      return out.stderr;
    },
    async waitForLog(pattern, timeoutMs = 10_000) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const m = typeof pattern === "function"
          ? (pattern(out.stderr) ? [out.stderr] : null)
          : typeof pattern === "string"
          ? (out.stderr.includes(pattern) ? [pattern] : null)
          : new RegExp(pattern.source, pattern.flags.replace("g", "")).exec(out.stderr);
        if (m) return m;
        if (exited) {
          await pumped;
          throw new Error(`ferry exited before logging ${pattern}: ${out.stderr}`);
        }
        if (performance.now() > deadline) throw new Error(`ferry did not log ${pattern}: ${out.stderr}`);
        await sleep(20);
      }
    },
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
      const { code } = await status;
      await pumped;
      return { code, ...out };
    },
    async kill() {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await status;
      await pumped;
    },
  };
  if (options.adminPort !== undefined) {
    const deadline = performance.now() + (options.timeoutMs ?? 10_000);
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${options.adminPort}/ready`).then(
        async (r) => (await r.body?.cancel(), r.status === 200),
        () => false,
      );
      if (ok) break;
      if (exited || performance.now() > deadline) {
        const why = exited ? "exited" : `was not ready in ${options.timeoutMs ?? 10_000} ms`; // before kill() exits it
        await p.kill();
        throw new Error(`ferry ${why} (admin :${options.adminPort}): ${out.stderr}`);
      }
      await sleep(50);
    }
  }
  return p;
}

/** Integration tests keep servers and timers across awaits on purpose. */
export const itOpts = { sanitizeOps: false, sanitizeResources: false } as const;
