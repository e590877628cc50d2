/**
 * Ferry's xDS client: ADS (state-of-the-world and delta), per-type API sources and file-based sources for
 * listeners, routes, clusters, endpoints and secrets, applied to a running {@link Server}.
 *
 * - `types.ts`: type URLs, decoded resources, the update/sink contract;
 * - `wire.ts` / `proto.ts`: the discovery messages and resources as protobuf (Envoy's `.proto` files);
 * - `grpc_source.ts`: one xDS gRPC stream; `file_source.ts`: a watched `path_config_source` file;
 * - `grpc_target.ts`: the management server's address and TLS from its static cluster;
 * - `xds_manager.ts`: subscriptions, validation, warming, applying, config dump.
 *
 * @module
 */
import { ConfigError } from "../lib/api/errors.ts";
import type { DynamicResourcesConfig } from "../lib/config/config_source.ts";
import type { Server, XdsHandle } from "../lib/server/server.ts";
import { VERSION } from "../lib/version.ts";
import { clusterGrpcTarget } from "./grpc_target.ts";
import { createXdsWire, loadXdsTypes } from "./proto.ts";
import { XdsManager } from "./xds_manager.ts";
import type { XdsWire } from "./wire.ts";

const unavailable = (): never => {
  throw new Error(
    "a gRPC config source (api_config_source) here needs dynamic_resources to use gRPC too (ads_config, or an " +
      "api_config_source for lds_config or cds_config)",
  );
};
/** The wire of file-only setups: a gRPC source nested in file-based resources is refused. */
const noWire: XdsWire = {
  encodeRequest: unavailable,
  decodeResponse: unavailable,
  encodeDeltaRequest: unavailable,
  decodeDeltaResponse: unavailable,
  decodeResource: unavailable,
};

export { XdsManager } from "./xds_manager.ts";
export type { XdsManagerOptions, XdsServerApi } from "./xds_manager.ts";
export { TYPE } from "./types.ts";
export type { DecodedResource, ResourceUpdate, TypeUrl } from "./types.ts";

/** The node sent to management servers: the bootstrap's `node` plus Ferry's user agent. */
function nodeOf(server: Server): Record<string, unknown> {
  const raw = server.config.rawNode;
  const base = raw !== null && typeof raw === "object" && !Array.isArray(raw) ? raw as Record<string, unknown> : {};
  return {
    ...base,
    id: server.config.node.id,
    cluster: server.config.node.cluster,
    user_agent_name: "ferry",
    user_agent_version: VERSION,
  };
}

/** Options of {@link startXds}. */
export interface StartXdsOptions {
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
}

/**
 * Starts the xDS client of `server` for `dynamic`: loads the protobuf definitions, opens the sources, and returns
 * the handle whose `initialized` resolves when the initial config is in.
 */
export async function startXds(
  server: Server,
  dynamic: DynamicResourcesConfig,
  options: StartXdsOptions = {},
): Promise<XdsHandle> {
  // The protobuf definitions are loaded only for gRPC sources; file-based config needs none.
  const grpc = dynamic.ads !== undefined || dynamic.lds?.kind === "api" || dynamic.cds?.kind === "api";
  let wire: XdsWire = noWire;
  if (grpc) {
    await loadXdsTypes();
    wire = createXdsWire();
  }
  const manager = new XdsManager({
    dynamic,
    server: {
      stats: server.stats,
      clusterManager: server.clusterManager,
      routeConfigs: server.routeConfigs,
      secrets: server.secrets,
      staticListenerNames: server.staticListenerNames,
      staticClusterNames: server.staticClusterNames,
      addOrUpdateListener: (raw, path) => server.addOrUpdateListener(raw, { path, validateClusters: false }),
      validateListener: (raw, path) => server.validateListener(raw, path),
      removeListener: (name) => server.removeListener(name),
      forwardToWorkers: (op) => server.forwardToWorkers(op),
      workersApplied: () => server.workersApplied(),
    },
    node: nodeOf(server),
    grpcTarget: (clusterName, authority, path) => {
      const cluster = server.clusterManager.get(clusterName);
      if (cluster === undefined) {
        throw new ConfigError(`${path}.grpc_services[0].envoy_grpc.cluster_name`, `unknown cluster "${clusterName}"`);
      }
      return { ...clusterGrpcTarget(cluster, authority, path), label: "" };
    },
    wire,
    ...(options.backoffBaseMs !== undefined ? { backoffBaseMs: options.backoffBaseMs } : {}),
    ...(options.backoffMaxMs !== undefined ? { backoffMaxMs: options.backoffMaxMs } : {}),
  });
  const initialized = manager.start();
  return {
    initialized,
    configDump: (o) => manager.configDump(o),
    close: () => manager.close(),
  };
}
