/**
 * The admin HTTP API, with Envoy's endpoints and output formats: `/ready`, `/server_info`, `/stats` (text, JSON,
 * Prometheus), `/config_dump` (secrets redacted), `/clusters`, `/listeners`, `/logging`, `/healthcheck/fail|ok`,
 * `/drain_listeners`, `/quitquitquit`, `/memory`, `/runtime`, ...
 *
 * It runs on `Deno.serve` on the main thread, off the data path. Everything it shows or changes goes through an
 * {@link AdminContext} that the server implements. Endpoints that change state require POST (405 otherwise, as
 * Envoy); unknown paths get 404 with the list of endpoints.
 *
 * @example
 * ```ts
 * const admin = await startAdmin({ address: "127.0.0.1", port: 9901, context });
 * console.log(admin.port);
 * await admin.close();
 * ```
 *
 * @module
 */
import { renderPrometheus, renderStatsJson, renderStatsText, StatsStore } from "../observe/stats.ts";
import type { StatsRenderOptions, StatsSnapshot } from "../observe/stats.ts";
import { getLogger, getLogLevels, isLogLevel, LOG_LEVELS, setComponentLogLevel } from "../observe/log.ts";
import type { LogLevel } from "../observe/log.ts";
import { reopenAccessLogs } from "../observe/access_log.ts";
import { redactSecrets } from "./redact.ts";
import { serverRuntime } from "../runtime/mod.ts";
import {
  type ClusterDescription,
  formatClustersJson,
  formatClustersText,
  formatListenersJson,
  formatListenersText,
  type ListenerDescription,
} from "./clusters.ts";

export type { AdminThresholds, ClusterDescription, HostDescription, ListenerDescription } from "./clusters.ts";

const log = getLogger("admin");

/** A value, or a promise of it (the server may gather it from workers). */
type MaybePromise<T> = T | Promise<T>;

/**
 * What the admin API needs from the server. The server (lib/server) implements it; every method is called on the
 * main thread, from an admin request, never from the data path. Optional members have a sensible default.
 */
export interface AdminContext {
  /**
   * `/server_info`: Envoy's `ServerInfo` JSON — `version`, `state` (`LIVE`, `DRAINING`, `PRE_INITIALIZING`,
   * `INITIALIZING`), `uptime_current_epoch`, `uptime_all_epochs`, `hot_restart_version` (`"disabled"`),
   * `command_line_options`, `node`, and `healthcheck_failed` (true after `POST /healthcheck/fail`). The admin API
   * reports a `LIVE` server whose health checks are failed as `DRAINING`, as Envoy does; that state is also the
   * `/ready` text.
   */
  serverInfo(): MaybePromise<object>;
  /** The stats to show: a store, or a snapshot merged from every worker. */
  stats(): MaybePromise<StatsStore | StatsSnapshot>;
  /**
   * `/config_dump`: `{configs: [{"@type": ".../envoy.admin.v3.BootstrapConfigDump", bootstrap}, {"@type":
   * ".../ListenersConfigDump", static_listeners: [...]}, {"@type": ".../ClustersConfigDump", static_clusters:
   * [...]}]}`. May contain secrets: the admin API redacts them before output.
   */
  configDump(options?: { includeEds: boolean }): MaybePromise<object>;
  /** `/clusters`. */
  clusters(): MaybePromise<readonly ClusterDescription[]>;
  /** `/listeners`. */
  listeners(): MaybePromise<readonly ListenerDescription[]>;
  /**
   * `POST /logging?level=`: sets every component's level (the server forwards it to workers). The admin API
   * validates the name first; returning false means the server refused it (400).
   */
  setLogLevel(level: LogLevel): boolean | void;
  /**
   * `POST /logging?<component>=<level>`; defaults to this thread's `setComponentLogLevel`. A server with worker
   * threads must also forward it to them (`WorkerSet.setComponentLogLevel`).
   */
  setComponentLogLevel?(component: string, level: LogLevel): boolean | void;
  /** The default log level, if the server tracks it apart from lib/observe/log.ts. */
  logLevel?(): string;
  /** Each component's level for `/logging`; defaults to lib/observe/log.ts's `getLogLevels()`. */
  logLevels?(): Record<string, string>;
  /**
   * `POST /healthcheck/fail`: fail health checks. As in Envoy the server state becomes `DRAINING` (so `/ready`
   * answers 503 `DRAINING`) until `POST /healthcheck/ok`.
   */
  healthcheckFail(): void;
  /** `POST /healthcheck/ok`. */
  healthcheckOk(): void;
  /** `POST /drain_listeners[?graceful][&inboundonly]`. */
  drainListeners(opts: { graceful: boolean; inboundOnly: boolean }): MaybePromise<void>;
  /** `POST /quitquitquit`: called after the response is sent. */
  quit(): void;
  /**
   * Whether the server is `LIVE`; `/ready` uses it only when `serverInfo()` has no `state` (otherwise the state
   * decides: 200 for `LIVE`, else 503).
   */
  ready(): boolean;
  /** `POST /reopen_logs`; defaults to reopening this thread's access log files. */
  reopenLogs?(): MaybePromise<void>;
  /**
   * `POST /reset_counters`; defaults to resetting the store if `stats()` returns one (a merged snapshot cannot be
   * reset: 501). A server with worker threads must reset theirs too (`WorkerSet.resetCounters`).
   */
  resetCounters?(): MaybePromise<void>;
  /** `/runtime` entries; defaults to none. */
  runtime?(): MaybePromise<Record<string, unknown>>;
}

/** A running admin server. */
export interface AdminServer {
  /** The bound port (useful with port 0). */
  readonly port: number;
  /** Stops listening and closes connections. */
  close(): Promise<void>;
}

/** Options for {@link startAdmin}. */
export interface AdminOptions {
  /** Address to bind (`127.0.0.1`, `0.0.0.0`, `::`). */
  address: string;
  /** Port to bind; 0 picks one. */
  port: number;
  context: AdminContext;
}

type Handler = (url: URL, req: Request) => Promise<Response> | Response;

interface Endpoint {
  readonly path: string;
  readonly help: string;
  /** Changes server state: POST only. */
  readonly mutates: boolean;
  readonly handler: Handler;
}

const TEXT = "text/plain; charset=UTF-8";
const JSON_TYPE = "application/json";
const PROM_TYPE = "text/plain; version=0.0.4; charset=UTF-8";

function respond(body: string, status = 200, type = TEXT, extra: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: {
      "content-type": type,
      "cache-control": "no-cache, max-age=0",
      "x-content-type-options": "nosniff",
      ...extra,
    },
  });
}

function json(v: unknown, status = 200): Response {
  return respond(`${JSON.stringify(v, null, 2)}\n`, status, JSON_TYPE);
}

/**
 * The server state as Envoy's `Server::Utility::serverState` reports it: an initialized server whose health checks
 * were failed (`POST /healthcheck/fail`) is `DRAINING`, not `LIVE`.
 */
async function serverInfoOf(ctx: AdminContext): Promise<Record<string, unknown>> {
  const info = { ...(await ctx.serverInfo()) } as Record<string, unknown>;
  if (info["state"] === "LIVE" && info["healthcheck_failed"] === true) info["state"] = "DRAINING";
  return info;
}

function flag(url: URL, name: string): boolean {
  return url.searchParams.has(name) && url.searchParams.get(name) !== "false";
}

async function snapshotOf(ctx: AdminContext): Promise<StatsSnapshot> {
  const s = await ctx.stats();
  return s instanceof StatsStore ? s.snapshot() : s;
}

function pascalSingular(field: string): string {
  const p = field.split("_").map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join("");
  return p.endsWith("s") ? p.slice(0, -1) : p;
}

/** Applies `?resource=` (one repeated field of each config, items flattened) and `?mask=` (field paths). */
function selectConfigDump(dump: unknown, url: URL): { body?: unknown; error?: string } {
  const resource = url.searchParams.get("resource");
  const mask = url.searchParams.get("mask");
  const configs = (dump as { configs?: unknown }).configs;
  if (!Array.isArray(configs)) return { body: dump };
  let out: unknown[] = configs;
  if (resource !== null && resource !== "") {
    out = [];
    for (const c of configs) {
      if (c === null || typeof c !== "object") continue;
      const rec = c as Record<string, unknown>;
      const items = rec[resource];
      if (!Array.isArray(items)) continue;
      const type = typeof rec["@type"] === "string" ? `${rec["@type"]}.${pascalSingular(resource)}` : undefined;
      for (const item of items) {
        const withType = item !== null && typeof item === "object" && !("@type" in item) && type !== undefined
          ? { "@type": type, ...(item as Record<string, unknown>) }
          : item;
        out.push(withType);
      }
    }
    if (out.length === 0) return { error: `the resource "${resource}" was not found in the config dump` };
  }
  if (mask !== null && mask !== "") {
    const paths = mask.split(",").map((p) => p.trim().split(".")).filter((p) => p[0] !== "");
    out = out.map((c) => {
      if (c === null || typeof c !== "object") return c;
      const res: Record<string, unknown> = {};
      const src = c as Record<string, unknown>;
      if ("@type" in src) res["@type"] = src["@type"];
      for (const p of paths) {
        let from: unknown = src;
        for (const k of p) {
          from = from !== null && typeof from === "object" ? (from as Record<string, unknown>)[k] : undefined;
        }
        if (from === undefined) continue;
        let to = res;
        for (let i = 0; i < p.length - 1; i++) {
          const k = p[i]!;
          if (to[k] === undefined || to[k] === null || typeof to[k] !== "object") to[k] = {};
          to = to[k] as Record<string, unknown>;
        }
        to[p[p.length - 1]!] = from;
      }
      return res;
    });
  }
  return { body: { ...(dump as Record<string, unknown>), configs: out } };
}

function logLevelsText(ctx: AdminContext): string {
  const levels = ctx.logLevels?.() ?? getLogLevels();
  const lines = Object.entries(levels).map(([k, v]) => `  ${k}: ${v}\n`);
  return `active loggers:\n${lines.join("")}`;
}

const LOGGING_USAGE = `usage: POST /logging?level=<level> (every component), /logging?<component>=<level>, ` +
  `/logging?paths=<component>:<level>,...\nlevels: ${LOG_LEVELS.join(", ")}\n`;

function endpoints(ctx: AdminContext, all: () => readonly Endpoint[]): Endpoint[] {
  const e = (path: string, help: string, mutates: boolean, handler: Handler): Endpoint => ({
    path,
    help,
    mutates,
    handler,
  });
  return [
    e("/", "Admin home page", false, () => respond(indexHtml(all()), 200, "text/html; charset=UTF-8")),
    e("/help", "print out list of admin commands", false, () => respond(helpText(all()))),
    e("/ready", "print server state, return 200 if LIVE, otherwise return 503", false, async () => {
      const info = await serverInfoOf(ctx);
      const state = typeof info["state"] === "string" ? info["state"] : ctx.ready() ? "LIVE" : "NOT_READY";
      return respond(`${state}\n`, state === "LIVE" ? 200 : 503);
    }),
    e("/server_info", "print server version/status information", false, async () => json(await serverInfoOf(ctx))),
    e("/stats", "print server stats", false, async (url) => statsResponse(url, await snapshotOf(ctx))),
    e(
      "/stats/prometheus",
      "print server stats in prometheus format",
      false,
      async (url) => statsResponse(url, await snapshotOf(ctx), "prometheus"),
    ),
    e("/config_dump", "dump current Ferry configs (secrets redacted)", false, async (url) => {
      const includeEds = url.searchParams.has("include_eds");
      const sel = selectConfigDump(redactSecrets(await ctx.configDump({ includeEds })), url);
      if (sel.error !== undefined) return respond(`${sel.error}\n`, 404);
      return json(sel.body);
    }),
    e("/clusters", "upstream cluster status", false, async (url) => {
      const c = await ctx.clusters();
      return url.searchParams.get("format") === "json" ? json(formatClustersJson(c)) : respond(formatClustersText(c));
    }),
    e("/listeners", "print listener info", false, async (url) => {
      const l = await ctx.listeners();
      return url.searchParams.get("format") === "json" ? json(formatListenersJson(l)) : respond(formatListenersText(l));
    }),
    e("/logging", "query/change logging levels", true, (url) => loggingResponse(ctx, url)),
    e("/healthcheck/fail", "cause the server to fail health checks", true, () => {
      ctx.healthcheckFail();
      serverRuntime.healthCheckFailed = true;
      return respond("OK\n");
    }),
    e("/healthcheck/ok", "cause the server to pass health checks", true, () => {
      ctx.healthcheckOk();
      serverRuntime.healthCheckFailed = false;
      return respond("OK\n");
    }),
    e("/drain_listeners", "drain listeners (?graceful, ?inboundonly)", true, async (url) => {
      await ctx.drainListeners({ graceful: flag(url, "graceful"), inboundOnly: flag(url, "inboundonly") });
      return respond("OK\n");
    }),
    e("/quitquitquit", "exit the server", true, () => {
      // After the response is on its way: quitting closes this server.
      setTimeout(() => {
        try {
          ctx.quit();
        } catch (err) {
          log.error(`quitquitquit: ${err instanceof Error ? err.message : String(err)}`);
        }
      }, 0);
      return respond("OK\n");
    }),
    e("/reopen_logs", "reopen access logs", true, async () => {
      await (ctx.reopenLogs ? ctx.reopenLogs() : reopenAccessLogs());
      return respond("OK\n");
    }),
    e("/reset_counters", "reset all counters to zero", true, async () => {
      if (ctx.resetCounters) await ctx.resetCounters();
      else {
        const s = await ctx.stats();
        if (s instanceof StatsStore) s.resetCounters();
        else return respond("reset_counters is not available: the stats are merged from workers\n", 501);
      }
      return respond("OK\n");
    }),
    e("/memory", "print current allocation/heap usage", false, () => {
      const m = Deno.memoryUsage();
      return json({
        allocated: String(m.heapUsed),
        heap_size: String(m.heapTotal),
        pageheap_unmapped: "0",
        pageheap_free: "0",
        total_thread_cache: "0",
        total_physical_bytes: String(m.rss),
        external: String(m.external),
      });
    }),
    e("/runtime", "print runtime values", false, async () => {
      const d = serverRuntime.dump();
      return json(ctx.runtime ? { layers: d.layers, entries: await ctx.runtime() } : d);
    }),
    e("/runtime_modify", "modify runtime values (?key=value; an empty value removes the key)", true, (url) => {
      // As Envoy: without an admin layer in layered_runtime there is nothing to modify.
      if (!serverRuntime.modify(url.searchParams.entries())) {
        return respond("No admin layer specified\n", 503);
      }
      return respond("OK\n");
    }),
    e("/hot_restart_version", "print the hot restart compatibility version", false, async () => {
      const v = (await ctx.serverInfo() as { hot_restart_version?: unknown }).hot_restart_version;
      return respond(`${typeof v === "string" ? v : "disabled"}\n`);
    }),
  ];
}

function statsResponse(url: URL, snap: StatsSnapshot, forced?: "prometheus"): Response {
  const opts: StatsRenderOptions = {};
  const filter = url.searchParams.get("filter");
  if (filter !== null && filter !== "") {
    try {
      opts.filter = new RegExp(filter);
    } catch (e) {
      return respond(`Invalid regex: ${JSON.stringify(filter)}: ${(e as Error).message}\n`, 400);
    }
  }
  if (flag(url, "usedonly")) opts.usedOnly = true;
  const type = url.searchParams.get("type");
  if (type !== null && type !== "All") {
    if (type !== "Counters" && type !== "Gauges" && type !== "Histograms") {
      return respond(`invalid type "${type}": use All, Counters, Gauges or Histograms\n`, 400);
    }
    opts.type = type;
  }
  const format = forced ?? url.searchParams.get("format") ?? "text";
  switch (format) {
    case "text":
      return respond(renderStatsText(snap, opts));
    case "json":
      return respond(renderStatsJson(snap, opts), 200, JSON_TYPE);
    case "prometheus":
      return respond(renderPrometheus(snap, opts), 200, PROM_TYPE);
    default:
      return respond(`invalid format "${format}": use text, json or prometheus\n`, 400);
  }
}

async function loggingResponse(ctx: AdminContext, url: URL): Promise<Response> {
  const bad = (msg: string) => respond(`error: ${msg}\n\n${LOGGING_USAGE}`, 400);
  const changes: [string | undefined, string][] = [];
  for (const [k, v] of url.searchParams) {
    if (k === "level") changes.push([undefined, v]);
    else if (k === "paths") {
      for (const p of v.split(",")) {
        const [comp, lvl] = p.split(":");
        if (!comp || lvl === undefined) return bad(`"${p}" is not <component>:<level>`);
        changes.push([comp, lvl]);
      }
    } else changes.push([k, v]);
  }
  for (const [comp, lvl] of changes) {
    if (!isLogLevel(lvl)) return bad(`unknown logger level "${lvl}"${comp ? ` for "${comp}"` : ""}`);
  }
  for (const [comp, lvl] of changes) {
    const level = lvl as LogLevel;
    let ok: boolean | void = undefined;
    if (comp === undefined) ok = ctx.setLogLevel(level);
    else if (ctx.setComponentLogLevel) ok = ctx.setComponentLogLevel(comp, level);
    else setComponentLogLevel(comp, level);
    if (ok === false) return bad(`the server refused level "${lvl}"${comp ? ` for "${comp}"` : ""}`);
    log.info(comp === undefined ? `log level set to ${level}` : `log level of "${comp}" set to ${level}`);
  }
  await Promise.resolve();
  return respond(logLevelsText(ctx));
}

function helpText(all: readonly Endpoint[]): string {
  return `admin commands are:\n${all.map((e) => `  ${e.path}${e.mutates ? " (POST)" : ""}: ${e.help}\n`).join("")}`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : "&quot;");
}

function indexHtml(all: readonly Endpoint[]): string {
  const rows = all.filter((e) => e.path !== "/").map((e) => {
    const p = escapeHtml(e.path);
    const cell = e.mutates
      ? `<form action="${p}" method="post"><button type="submit">${p}</button></form>`
      : `<a href="${p}">${p}</a>`;
    return `<tr><td>${cell}</td><td>${escapeHtml(e.help)}</td></tr>`;
  });
  return `<!DOCTYPE html>\n<html><head><title>Ferry admin</title></head><body>\n<h1>Ferry admin</h1>\n` +
    `<table>\n${rows.join("\n")}\n</table>\n</body></html>\n`;
}

/**
 * The admin request handler, without a socket: `startAdmin` serves it, tests and embedders may call it directly.
 */
export function createAdminHandler(ctx: AdminContext): (req: Request) => Promise<Response> {
  let table: Endpoint[] = [];
  table = endpoints(ctx, () => table);
  const byPath = new Map(table.map((e) => [e.path, e]));
  return async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const ep = byPath.get(url.pathname);
    if (ep === undefined) return respond(`invalid path. ${helpText(table)}`, 404);
    const method = req.method;
    if (ep.mutates && method !== "POST") {
      // GET /logging without parameters only lists the levels.
      if (!(ep.path === "/logging" && method === "GET" && url.search === "")) {
        log.error(`admin path "${ep.path}" mutates state, method=${method} rather than POST`);
        return respond(`Method ${method} not allowed, POST required.`, 405, TEXT, { allow: "POST" });
      }
    }
    if (!ep.mutates && method !== "GET" && method !== "HEAD" && method !== "POST") {
      return respond(`Method ${method} not allowed.\n`, 405, TEXT, { allow: "GET, HEAD, POST" });
    }
    try {
      return await ep.handler(url, req);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      log.error(`admin path "${ep.path}": ${msg}`);
      return respond(`error: ${msg}\n`, 500);
    }
  };
}

/**
 * Starts the admin API on `address:port` with `Deno.serve`. Rejects if the address cannot be bound, with a
 * message naming it.
 */
export function startAdmin(options: AdminOptions): Promise<AdminServer> {
  const handler = createAdminHandler(options.context);
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: options.address,
      port: options.port,
      onListen: () => {},
      onError: (e) => {
        log.error(`admin: ${e instanceof Error ? e.message : String(e)}`);
        return respond("internal error\n", 500);
      },
    }, handler);
  } catch (e) {
    return Promise.reject(
      new Error(`admin: cannot listen on ${options.address}:${options.port}: ${(e as Error).message}`, { cause: e }),
    );
  }
  let closing: Promise<void> | undefined;
  return Promise.resolve({
    port: server.addr.port,
    close(): Promise<void> {
      closing ??= server.shutdown().then(() => server.finished);
      return closing;
    },
  });
}
