/**
 * The `ferry` command line: Envoy's flags, config loading, start-up, signals and drain.
 *
 * ```
 * ferry [-c FILE] [--config-yaml YAML] [--mode serve|validate] [-l LEVEL] [--drain-time-s N]
 * ferry certs --gm --out DIR
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ConfigError } from "./lib/api/errors.ts";
import { parseBootstrap, parseConfigText } from "./lib/config/bootstrap.ts";
import { defaultBootstrap } from "./lib/config/default.ts";
import { getLogger, isLogLevel, LOG_LEVELS, setLogLevel } from "./lib/observe/log.ts";
import { createRegistries } from "./lib/server/registries.ts";
import { HotRestart, parseHotRestartFlags } from "./lib/server/hot_restart.ts";
import { tuneMalloc } from "./lib/server/malloc_tuning.ts";
import { Server } from "./lib/server/server.ts";
import { setEventLoops } from "./lib/tls/gm.ts";
import { VERSION } from "./lib/version.ts";

const HELP = `Ferry ${VERSION} — an edge proxy and service-mesh data plane (Envoy v3 configuration)

Usage:
  ferry [options]                 run (with no config: the embedded default, admin on 127.0.0.1:9901)
  ferry certs --gm --out DIR      write a test PKI (SM2 + ECDSA) for GM TLS

Options:
  -c, --config-path FILE    bootstrap config, YAML or JSON (Envoy v3 Bootstrap)
      --config-yaml YAML    bootstrap as a YAML string; merged over --config-path when both are given
      --mode MODE           serve (default) or validate (check the config, print OK or the error, exit 0/1)
  -l, --log-level LEVEL     ${LOG_LEVELS.join(", ")} (default info)
      --drain-time-s N      seconds a SIGTERM/SIGINT drain waits for in-flight requests (default 600)
      --restart-epoch N     hot upgrade (README "Hot upgrade"): 0 for the first process (default); N takes the
                            listening sockets of the running epoch N-1 and tells it to drain and exit
      --base-id N           tells apart Ferrys on one host for hot restart (default 0)
      --socket-path P       hot restart control socket prefix (default @ferry_domain_socket; @ = abstract)
      --parent-shutdown-time-s N  at a hot upgrade, the old process exits after N s at the latest (default 900)
      --drain-strategy S    gradual (default) or immediate: how the old process drains at a hot upgrade
      --experimental-migrate-idle-connections  at a hot upgrade, take over the old process's idle HTTP/1
                            keep-alive connections instead of having them closed
      --concurrency N       event loops serving the listeners (default: the number of cores): the main thread
                            plus N-1 worker threads, sharing each port with SO_REUSEPORT; admin and xDS stay on
                            the main thread, which forwards every xDS change to the workers
      --service-node ID     node id (overrides node.id)
      --service-cluster C   node cluster (overrides node.cluster)
      --version             print the version
  -h, --help                this help
`;

/** Deep-merges `b` into `a` as protobuf MergeFrom does: objects recursively, lists appended, scalars replaced. */
function mergeConfig(a: unknown, b: unknown): unknown {
  if (Array.isArray(a) && Array.isArray(b)) return [...a, ...b];
  if (a && b && typeof a === "object" && typeof b === "object" && !Array.isArray(a) && !Array.isArray(b)) {
    const out: Record<string, unknown> = { ...(a as Record<string, unknown>) };
    for (const [k, v] of Object.entries(b as Record<string, unknown>)) out[k] = k in out ? mergeConfig(out[k], v) : v;
    return out;
  }
  return b;
}

function fail(msg: string, code = 1): never {
  console.error(msg);
  Deno.exit(code);
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === "certs") {
    const { runCertsCommand } = await import("./lib/crypto/certs_command.ts");
    return await runCertsCommand(argv.slice(1));
  }
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        "config-path": { type: "string", short: "c" },
        "config-yaml": { type: "string" },
        "mode": { type: "string" },
        "log-level": { type: "string", short: "l" },
        "drain-time-s": { type: "string" },
        "restart-epoch": { type: "string" },
        "base-id": { type: "string" },
        "socket-path": { type: "string" },
        "parent-shutdown-time-s": { type: "string" },
        "drain-strategy": { type: "string" },
        "experimental-migrate-idle-connections": { type: "boolean" },
        "concurrency": { type: "string" },
        "service-node": { type: "string" },
        "service-cluster": { type: "string" },
        "version": { type: "boolean" },
        "help": { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    return fail(`ferry: ${e instanceof Error ? e.message : String(e)} (see --help)`, 2);
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (values.version) {
    console.log(`ferry version: ${VERSION} (deno ${Deno.version.deno})`);
    return 0;
  }
  const mode = values.mode ?? "serve";
  if (mode !== "serve" && mode !== "validate") return fail(`ferry: --mode must be serve or validate, not "${mode}"`, 2);
  const level = values["log-level"] ?? "info";
  if (!isLogLevel(level)) return fail(`ferry: --log-level must be one of ${LOG_LEVELS.join(", ")}, not "${level}"`, 2);
  setLogLevel(level);
  let drainTimeMs = 600_000;
  if (values["drain-time-s"] !== undefined) {
    const n = Number(values["drain-time-s"]);
    if (!Number.isFinite(n) || n < 0) {
      return fail(`ferry: --drain-time-s must be a number of seconds, not "${values["drain-time-s"]}"`, 2);
    }
    drainTimeMs = n * 1000;
  }
  if (values.concurrency !== undefined && !/^[1-9]\d{0,2}$/.test(values.concurrency)) {
    return fail(`ferry: --concurrency must be a whole number from 1 to 999, not "${values.concurrency}"`, 2);
  }

  // As Envoy: one event loop per core unless told otherwise. Recorded before the config is parsed: a TLCP listener
  // context shares its session cache with the other loops' (lib/tls/engine/tlcp/session_cache.ts).
  const concurrency = values.concurrency === undefined
    ? Math.max(1, Math.min(999, navigator.hardwareConcurrency || 1))
    : Number(values.concurrency);
  setEventLoops(concurrency);

  // Load and validate.
  let raw: unknown;
  let source = "embedded default";
  try {
    const path = values["config-path"];
    if (path !== undefined) {
      let text: string;
      try {
        text = await Deno.readTextFile(path);
      } catch (e) {
        throw new ConfigError("", `cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`);
      }
      raw = parseConfigText(text, path);
      source = path;
    }
    const yaml = values["config-yaml"];
    if (yaml !== undefined) {
      const extra = parseConfigText(yaml, "--config-yaml");
      raw = raw === undefined ? extra : mergeConfig(raw, extra);
      source = path === undefined ? "--config-yaml" : `${path} + --config-yaml`;
    }
    if (raw === undefined) raw = defaultBootstrap();
    if (values["service-node"] !== undefined || values["service-cluster"] !== undefined) {
      const node = {
        ...(values["service-node"] !== undefined ? { id: values["service-node"] } : {}),
        ...(values["service-cluster"] !== undefined ? { cluster: values["service-cluster"] } : {}),
      };
      raw = mergeConfig(raw, { node });
    }
  } catch (e) {
    return fail(e instanceof Error ? e.message : String(e));
  }
  const registries = createRegistries();
  let config;
  try {
    config = parseBootstrap(raw, registries);
  } catch (e) {
    if (e instanceof ConfigError) return fail(e.message);
    throw e;
  }
  if (mode === "validate") {
    for (const w of config.warnings) console.error(`warning: ${w}`);
    console.log(`OK: ${source} (${config.listeners.length} listener(s), ${config.clusters.length} cluster(s))`);
    return 0;
  }

  const log = getLogger("main");
  log.info(`ferry ${VERSION} starting with ${source}`);
  const malloc = tuneMalloc();
  if (malloc.length > 0) log.debug(`glibc malloc tuned: ${malloc.join(", ")} (FERRY_MALLOPT=off keeps the defaults)`);
  const hotOptions = parseHotRestartFlags(values, drainTimeMs);
  if (typeof hotOptions === "string") return fail(hotOptions, 2);
  let hot: HotRestart | undefined;
  try {
    hot = hotOptions && await HotRestart.prepare(hotOptions);
  } catch (e) {
    return fail(`ferry: ${e instanceof Error ? e.message : String(e)}`);
  }
  let server: Server;
  try {
    server = await Server.start(config, registries, {
      ...hot?.serverOptions(),
      drainTimeMs,
      commandLine: { ...values, mode, concurrency },
      ...(concurrency > 1 ? { workers: { count: concurrency - 1, raw, logLevel: level } } : {}),
    });
  } catch (e) {
    hot?.abort();
    return fail(`ferry: ${e instanceof Error ? e.message : String(e)}`);
  }
  await hot?.started(server, () => Deno.exit(0)).catch((e) => log.warn(`hot restart: ${e.message ?? e}`));
  let signals = 0;
  const onSignal = (sig: Deno.Signal) => {
    signals++;
    if (signals > 1) {
      log.warn(`${sig} again: exiting now`);
      Deno.exit(1);
    }
    log.info(`${sig}: draining (send again to exit at once)`);
    void server.drainAndStop(drainTimeMs);
  };
  Deno.addSignalListener("SIGTERM", () => onSignal("SIGTERM"));
  Deno.addSignalListener("SIGINT", () => onSignal("SIGINT"));
  const code = await server.exited;
  await hot?.close();
  return code;
}

if (import.meta.main) {
  const code = await main(Deno.args);
  Deno.exit(code);
}
