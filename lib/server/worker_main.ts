/**
 * Entry point of a worker thread (`--concurrency N`): runs its own listeners (bound with SO_REUSEPORT next to the
 * main thread's), its own clusters and pools, and answers the main thread's requests for stats, counter resets, log
 * levels and drain. The admin API stays on the main thread.
 *
 * Messages in: `{type: "start", raw, drainTimeMs}`, `{type: "stats", id}`, `{type: "log", level}`,
 * `{type: "log-component", component, level}`, `{type: "log-levels", id}`, `{type: "reset-counters", id}`,
 * `{type: "drain", ms, id}`, `{type: "listener-update", raw, id}`, `{type: "listener-remove", name, id}`. Out:
 * `{type: "started"}` or `{type: "error", message}`, `{type: "stats", id, snap}`, `{type: "log-levels", id, levels}`,
 * `{type: "counters-reset", id}`, `{type: "drained", id}`, `{type: "listener-done", id, error?}`.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { parseBootstrap } from "../config/bootstrap.ts";
import { getLogLevels, isLogLevel, setComponentLogLevel, setLogLevel } from "../observe/log.ts";
import { createRegistries } from "./registries.ts";
import { Server } from "./server.ts";
import { serverRuntime } from "../runtime/mod.ts";
import type { WorkerRequest } from "./workers.ts";

let server: Server | undefined;

self.onmessage = async (e: MessageEvent<WorkerRequest>) => {
  const m = e.data;
  try {
    switch (m.type) {
      case "start": {
        if (isLogLevel(m.logLevel)) setLogLevel(m.logLevel);
        const registries = createRegistries();
        const config = parseBootstrap(m.raw, registries);
        server = await Server.start(config, registries, { drainTimeMs: m.drainTimeMs, admin: false, quiet: true });
        self.postMessage({ type: "started" });
        break;
      }
      case "stats":
        self.postMessage({ type: "stats", id: m.id, snap: server?.stats.snapshot() });
        break;
      case "log":
        if (isLogLevel(m.level)) setLogLevel(m.level);
        break;
      case "log-component":
        if (isLogLevel(m.level)) setComponentLogLevel(m.component, m.level);
        break;
      case "runtime":
        serverRuntime.applyState(m.state);
        break;
      case "log-levels":
        self.postMessage({ type: "log-levels", id: m.id, levels: getLogLevels() });
        break;
      case "reset-counters":
        server?.stats.resetCounters();
        self.postMessage({ type: "counters-reset", id: m.id });
        break;
      case "drain":
        if (server) await server.drainAndStop(m.ms);
        self.postMessage({ type: "drained", id: m.id });
        break;
      case "stop-accepting":
        server?.stopAccepting(m.graceful);
        break;
      case "listener-update":
      case "listener-remove":
        try {
          if (!server) throw new Error("not started");
          if (m.type === "listener-update") await server.addOrUpdateListener(m.raw);
          else await server.removeListener(m.name);
          self.postMessage({ type: "listener-done", id: m.id });
        } catch (err) {
          self.postMessage({
            type: "listener-done",
            id: m.id,
            error: err instanceof Error ? err.message : String(err),
          });
        }
        break;
    }
  } catch (err) {
    self.postMessage({ type: "error", message: err instanceof Error ? err.message : String(err) });
  }
};
