/**
 * Entry point of a worker thread (`--concurrency N`): runs its own listeners (bound with SO_REUSEPORT next to the
 * main thread's), its own clusters and pools, and answers the main thread's requests for stats, counter resets, log
 * levels and drain. The admin API and the xDS client stay on the main thread, which forwards every dynamic config
 * change it applied (`config` messages, see {@link WorkerConfigOp}).
 *
 * Messages in: `{type: "start", raw, drainTimeMs}`, `{type: "stats", id}`, `{type: "log", level}`,
 * `{type: "log-component", component, level}`, `{type: "log-levels", id}`, `{type: "reset-counters", id}`,
 * `{type: "drain", ms, id}`, `{type: "listener-update", raw, path, id}`, `{type: "listener-remove", name, id}`,
 * `{type: "config", json, id}` (a {@link WorkerConfigOp} as JSON text), `{type: "listener-fds", id}`. Out: `{type: "started"}` or `{type: "error", message}`,
 * `{type: "stats", id, snap}`, `{type: "log-levels", id, levels}`, `{type: "counters-reset", id}`,
 * `{type: "drained", id}`, `{type: "listener-done", id, error?}`, `{type: "config-done", id, error?}`,
 * `{type: "listener-fds", id, fds}`.
 *
 * Listener and config messages are applied one at a time in arrival order (a listener update awaits its bind):
 * the main thread posts them in the order it applied them, and that order is what makes a cluster exist before
 * the endpoints and listeners that name it.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { parseBootstrap } from "../config/bootstrap.ts";
import { ObjReader } from "../config/reader.ts";
import { resolveSecretRefs } from "../config/secrets.ts";
import { getLogLevels, isLogLevel, setComponentLogLevel, setLogLevel } from "../observe/log.ts";
import { parseRouteConfiguration } from "../router/mod.ts";
import { parseSecret } from "../tls/secret_manager.ts";
import { parseCluster } from "../upstream/config.ts";
import { createRegistries } from "./registries.ts";
import { Server } from "./server.ts";
import { serverRuntime } from "../runtime/mod.ts";
import type { ListenerFd, WorkerConfigOp, WorkerRequest } from "./workers.ts";

let server: Server | undefined;
/** Listener and config changes, applied one after another. */
let changes: Promise<void> = Promise.resolve();

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Applies one forwarded change with the methods the main thread used; throws what they throw. */
function applyConfig(s: Server, op: WorkerConfigOp): void {
  switch (op.kind) {
    case "cluster":
      s.clusterManager.addOrUpdate(parseCluster(resolveSecretRefs(op.raw, op.path, s.secrets), op.path));
      break;
    case "cluster-remove":
      s.clusterManager.remove(op.name);
      break;
    case "hosts":
      if (op.raw === null) s.clusterManager.updateHosts(op.cluster, []);
      else s.updateClusterHosts(op.cluster, op.raw);
      break;
    case "route":
      // No connection manager naming it yet is fine: the listener that needs it may be the next message.
      s.routeConfigs.update(parseRouteConfiguration(op.raw, op.path));
      break;
    case "secret": {
      if (s.secrets.get(op.name) === undefined) {
        const o = new ObjReader(op.raw, op.path);
        const p = parseSecret(o);
        o.done();
        s.secrets.add({ ...p, path: op.path });
      } else {
        s.secrets.update(op.name, op.raw, op.path);
      }
      break;
    }
  }
}

/** The listening sockets of this isolate, per listener. */
function listenerFds(s: Server): ListenerFd[] {
  return s.listeners.map((l) => ({ listener: l.config.name, address: l.address, fds: l.fds }));
}

const onMessage = async (e: MessageEvent<WorkerRequest>) => {
  const m = e.data;
  try {
    switch (m.type) {
      case "start": {
        if (isLogLevel(m.logLevel)) setLogLevel(m.logLevel);
        const registries = createRegistries();
        const config = parseBootstrap(m.raw, registries);
        server = await Server.start(config, registries, {
          drainTimeMs: m.drainTimeMs,
          admin: false,
          quiet: true,
          worker: true,
        });
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
        await changes;
        if (server) await server.drainAndStop(m.ms);
        self.postMessage({ type: "drained", id: m.id });
        break;
      case "stop-accepting":
        server?.stopAccepting(m.graceful);
        break;
      case "listener-fds":
        self.postMessage({ type: "listener-fds", id: m.id, fds: server ? listenerFds(server) : [] });
        break;
      case "listener-update":
      case "listener-remove":
        changes = changes.then(async () => {
          try {
            if (!server) throw new Error("not started");
            // The main thread checked the clusters it names (or, for LDS, chose not to, as Envoy).
            if (m.type === "listener-update") {
              await server.addOrUpdateListener(m.raw, { path: m.path, validateClusters: false });
            } else await server.removeListener(m.name);
            self.postMessage({ type: "listener-done", id: m.id });
          } catch (err) {
            self.postMessage({ type: "listener-done", id: m.id, error: message(err) });
          }
        });
        break;
      case "config":
        changes = changes.then(() => {
          try {
            if (!server) throw new Error("not started");
            applyConfig(server, JSON.parse(m.json) as WorkerConfigOp);
            self.postMessage({ type: "config-done", id: m.id });
          } catch (err) {
            self.postMessage({ type: "config-done", id: m.id, error: message(err) });
          }
        });
        break;
    }
  } catch (err) {
    self.postMessage({ type: "error", message: message(err) });
  }
};
self.onmessage = onMessage; // through a local: see tests/gc_hygiene_test.ts
