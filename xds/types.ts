/**
 * The shapes the xDS client passes around: resource type URLs, decoded resources, and the updates a subscription
 * delivers to the {@link XdsManager} (`xds_manager.ts`).
 *
 * @module
 */

/** Envoy v3 resource type URLs Ferry subscribes to. */
export const TYPE = {
  listener: "type.googleapis.com/envoy.config.listener.v3.Listener",
  route: "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
  cluster: "type.googleapis.com/envoy.config.cluster.v3.Cluster",
  endpoint: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
  secret: "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
} as const;

/** One of {@link TYPE}. */
export type TypeUrl = typeof TYPE[keyof typeof TYPE];

/** The xDS name of each type, for stats and messages. */
export const TYPE_SHORT: Readonly<Record<TypeUrl, "lds" | "rds" | "cds" | "eds" | "sds">> = {
  [TYPE.listener]: "lds",
  [TYPE.route]: "rds",
  [TYPE.cluster]: "cds",
  [TYPE.endpoint]: "eds",
  [TYPE.secret]: "sds",
};

/** What each type is called in messages (`listener "x"`, `cluster "y"`). */
export const TYPE_NOUN: Readonly<Record<TypeUrl, string>> = {
  [TYPE.listener]: "listener",
  [TYPE.route]: "route_config",
  [TYPE.cluster]: "cluster",
  [TYPE.endpoint]: "cluster_load_assignment",
  [TYPE.secret]: "secret",
};

/** True for the types Envoy subscribes to as a wildcard (all resources the server has). */
export function isWildcardType(t: TypeUrl): boolean {
  return t === TYPE.listener || t === TYPE.cluster;
}

/** A resource decoded from the wire (or read from a file) into the JSON shape of Envoy's YAML. */
export interface DecodedResource {
  readonly name: string;
  /** The resource's version: delta's per-resource version, or the response's `version_info`. */
  readonly version: string;
  /** The resource as Envoy JSON (snake_case keys, `@type` on nested `Any`s). */
  readonly raw: Record<string, unknown>;
  /** A stable text of `raw`, to tell an unchanged resource from a changed one. */
  readonly text: string;
}

/**
 * What one response (or file load) says about a type: resources added or changed, names removed, and the
 * version. State-of-the-world sources report removals of wildcard types by comparing with what they had.
 */
export interface ResourceUpdate {
  readonly typeUrl: TypeUrl;
  readonly resources: readonly DecodedResource[];
  readonly removed: readonly string[];
  /** `version_info` (SotW) or `system_version_info` (delta; may be empty). */
  readonly version: string;
}

/**
 * Where a source delivers updates. `onUpdate` throws (or rejects) to reject the update: the message becomes the
 * NACK's `error_detail` and nothing of the update is applied.
 */
export interface UpdateSink {
  onUpdate(update: ResourceUpdate): void | Promise<void>;
  /** An update could not even be read (a file that does not parse): count it as rejected. */
  onRejected?(typeUrl: TypeUrl, message: string): void;
  /** The source lost (or regained) its server; `reason` says why. */
  onConnection?(connected: boolean, reason: string): void;
}

/** A source of resources: the ADS stream, a per-type gRPC stream, or a watched file. */
export interface ResourceSource {
  /** Sets the names of a type this source should deliver (`"*"`: all of them). Idempotent. */
  setInterest(typeUrl: TypeUrl, names: ReadonlySet<string> | "*"): void;
  /** Starts (connects, reads the file). */
  start(): void;
  /** Stops for good. */
  close(): void;
}
