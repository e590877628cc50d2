/**
 * One xDS gRPC stream to a management server, state-of-the-world (`GRPC`) or incremental (`DELTA_GRPC`), carrying
 * one type (a per-type `api_config_source`) or all of them (ADS), with Envoy's protocol:
 *
 * - **SotW**: per type, `version_info` is the last accepted version and `response_nonce` the last nonce received.
 *   A response is applied as a whole, then ACKed (`version_info` = its version, its nonce) or NACKed (the previous
 *   version, its nonce, `error_detail` = the one-line error). A change of the names wanted is a new request with
 *   the current version and nonce. For the wildcard types (listeners, clusters) a name missing from a response is
 *   a removal.
 * - **Delta**: the first request per type subscribes (`*` for the wildcard types) and lists the versions already
 *   held (`initial_resource_versions`); responses carry per-resource versions and `removed_resources`; ACK/NACK
 *   carry the nonce; interest changes are `resource_names_subscribe` / `resource_names_unsubscribe`.
 * - **Reconnect**: on a stream error or close, retry after a jittered exponential backoff (0.5 s doubling to 30 s,
 *   reset once a response arrives), then re-subscribe everything (SotW with the last accepted versions; delta
 *   with the versions held). What was applied keeps serving meanwhile.
 *
 * Responses are handled one at a time, in order: the next waits for the sink to finish applying the previous.
 *
 * @module
 */
import { getLogger } from "../lib/observe/log.ts";
import {
  type DecodedResource,
  isWildcardType,
  type ResourceSource,
  TYPE_SHORT,
  type TypeUrl,
  type UpdateSink,
} from "./types.ts";
import type { DeltaDiscoveryResponse, DiscoveryResponse, WireAny, XdsWire } from "./wire.ts";
import type { NetConnection } from "../lib/api/network.ts";
import { GrpcStream } from "../lib/upstream/grpc_stream.ts";
import { Slicer } from "./slicer.ts";
import { stableText } from "./stable_text.ts";

const log = getLogger("xds");

/** Where and how to connect; built by the manager from the ADS or API config source and its static cluster. */
export interface GrpcTarget {
  /** Opens a connection to the server (through its cluster: a host, TLS). */
  readonly connect: () => Promise<NetConnection>;
  readonly authority: string;
  readonly scheme: "http" | "https";
  readonly metadata: readonly { key: string; value: string }[];
  /** For messages: `ADS via cluster "xds"`. */
  readonly label: string;
}

/** Options of a {@link GrpcSource}. */
export interface GrpcSourceOptions {
  readonly target: GrpcTarget;
  readonly delta: boolean;
  /** Full method paths: `/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources`... */
  readonly method: string;
  /** The node as Envoy JSON. */
  readonly node: Record<string, unknown>;
  readonly setNodeOnFirstMessageOnly: boolean;
  readonly wire: XdsWire;
  readonly sink: UpdateSink;
  /** Backoff bounds (ms); tests shorten them. */
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
}

/** Per-type protocol state. */
interface TypeState {
  readonly typeUrl: TypeUrl;
  /** Names wanted, or "*". */
  interest: ReadonlySet<string> | "*";
  /** SotW: last accepted version_info. */
  version: string;
  /** Last nonce received (SotW and delta). */
  nonce: string;
  /** Names held, with their versions (delta: per-resource; SotW: the response version). */
  held: Map<string, string>;
  /** Delta: names subscribed on this stream (to compute subscribe/unsubscribe deltas). */
  subscribed: Set<string>;
  /** True once the initial request of this stream was sent. */
  requested: boolean;
  /** Decoded resources by their bytes (latin1 text), so that a resource sent again unchanged is not decoded again. */
  decoded: Map<string, { raw: Record<string, unknown>; text: string }>;
}

const LATIN1 = new TextDecoder("latin1");

const SOTW_METHODS: Record<string, string> = {
  ads: "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
  lds: "/envoy.service.listener.v3.ListenerDiscoveryService/StreamListeners",
  cds: "/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters",
  rds: "/envoy.service.route.v3.RouteDiscoveryService/StreamRoutes",
  eds: "/envoy.service.endpoint.v3.EndpointDiscoveryService/StreamEndpoints",
  sds: "/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets",
};
const DELTA_METHODS: Record<string, string> = {
  ads: "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources",
  lds: "/envoy.service.listener.v3.ListenerDiscoveryService/DeltaListeners",
  cds: "/envoy.service.cluster.v3.ClusterDiscoveryService/DeltaClusters",
  rds: "/envoy.service.route.v3.RouteDiscoveryService/DeltaRoutes",
  eds: "/envoy.service.endpoint.v3.EndpointDiscoveryService/DeltaEndpoints",
  sds: "/envoy.service.secret.v3.SecretDiscoveryService/DeltaSecrets",
};

/** The gRPC method of ADS (`"ads"`) or of one type's own discovery service. */
export function methodFor(kind: "ads" | TypeUrl, delta: boolean): string {
  const key = kind === "ads" ? "ads" : TYPE_SHORT[kind];
  return (delta ? DELTA_METHODS : SOTW_METHODS)[key]!;
}

/** Names of a response's resources, from the decoded resource (`name`, or a CLA's `cluster_name`). */
function resourceName(raw: Record<string, unknown>): string {
  const n = raw["name"] ?? raw["cluster_name"];
  return typeof n === "string" ? n : "";
}

/** A `google.rpc.Status` code: INVALID_ARGUMENT, as Envoy NACKs. */
const INVALID_ARGUMENT = 3;

/** An xDS stream; see the module doc. */
export class GrpcSource implements ResourceSource {
  readonly #o: GrpcSourceOptions;
  readonly #types = new Map<TypeUrl, TypeState>();
  /** Order types were first asked for: initial requests go out in this order (CDS before LDS, as Envoy). */
  #call: GrpcStream | undefined;
  #closed = false;
  #started = false;
  #nodeSent = false;
  #attempt = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #queue: Promise<void> = Promise.resolve();
  #connected = false;

  constructor(options: GrpcSourceOptions) {
    this.#o = options;
  }

  /** True while a stream is open and has delivered a response. */
  get connected(): boolean {
    return this.#connected;
  }

  setInterest(typeUrl: TypeUrl, names: ReadonlySet<string> | "*"): void {
    let st = this.#types.get(typeUrl);
    if (st === undefined) {
      st = {
        typeUrl,
        interest: names,
        version: "",
        nonce: "",
        held: new Map(),
        subscribed: new Set(),
        requested: false,
        decoded: new Map(),
      };
      this.#types.set(typeUrl, st);
      if (this.#call) this.#sendInitial(st);
      return;
    }
    if (sameInterest(st.interest, names)) return;
    st.interest = names;
    if (names !== "*") {
      // Forget what is no longer wanted: a later subscription must fetch it again.
      for (const n of [...st.held.keys()]) if (!names.has(n)) st.held.delete(n);
    }
    if (!this.#call) return;
    if (!st.requested) this.#sendInitial(st);
    else if (this.#o.delta) this.#sendDeltaInterest(st);
    else this.#sendSotw(st, undefined);
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#connect();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#call?.cancel();
    this.#call = undefined;
  }

  #connect(): void {
    if (this.#closed) return;
    const t = this.#o.target;
    const call = new GrpcStream({
      connect: t.connect,
      authority: t.authority,
      scheme: t.scheme,
      path: this.#o.method,
      metadata: t.metadata,
    });
    this.#call = call;
    this.#nodeSent = false;
    for (const st of this.#types.values()) {
      st.requested = false;
      st.subscribed.clear();
      st.nonce = "";
    }
    call.open((bytes) => {
      // Responses wait their turn (the previous one may still be applying).
      this.#queue = this.#queue.then(() => this.#onResponse(call, bytes));
    }, (reason) => this.#onDown(call, reason));
    for (const st of this.#types.values()) this.#sendInitial(st);
  }

  #onDown(call: GrpcStream, reason: string): void {
    if (this.#call !== call) return;
    this.#call = undefined;
    call.cancel();
    const wasConnected = this.#connected;
    this.#connected = false;
    this.#o.sink.onConnection?.(false, reason);
    if (this.#closed) return;
    const base = this.#o.backoffBaseMs ?? 500;
    const max = this.#o.backoffMaxMs ?? 30_000;
    // Jittered exponential backoff (Envoy's JitteredExponentialBackOffStrategy): random in [0, min(max, base*2^n)].
    const ceiling = Math.min(max, base * 2 ** Math.min(this.#attempt, 16));
    this.#attempt++;
    const delay = Math.max(base / 2, Math.random() * ceiling);
    (wasConnected ? log.warn : log.debug).call(
      log,
      `${this.#o.target.label}: stream closed (${reason}); retrying in ${Math.round(delay)} ms`,
    );
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
  }

  #node(): Record<string, unknown> | undefined {
    if (this.#o.setNodeOnFirstMessageOnly && this.#nodeSent) return undefined;
    this.#nodeSent = true;
    return this.#o.node;
  }

  #write(bytes: Uint8Array): void {
    this.#call?.write(bytes);
  }

  #sendInitial(st: TypeState): void {
    st.requested = true;
    if (this.#o.delta) {
      const subscribe = st.interest === "*" ? (isWildcardType(st.typeUrl) ? ["*"] : []) : [...st.interest];
      st.subscribed = new Set(subscribe);
      const initial: Record<string, string> = {};
      for (const [n, v] of st.held) initial[n] = v;
      const node = this.#node();
      this.#write(this.#o.wire.encodeDeltaRequest({
        type_url: st.typeUrl,
        resource_names_subscribe: subscribe,
        initial_resource_versions: initial,
        ...(node ? { node } : {}),
      }));
    } else {
      this.#sendSotw(st, undefined);
    }
  }

  #sendSotw(st: TypeState, error: string | undefined): void {
    const node = this.#node();
    this.#write(this.#o.wire.encodeRequest({
      type_url: st.typeUrl,
      version_info: st.version,
      response_nonce: st.nonce,
      resource_names: st.interest === "*" ? [] : [...st.interest],
      ...(node ? { node } : {}),
      ...(error !== undefined ? { error_detail: { code: INVALID_ARGUMENT, message: error } } : {}),
    }));
  }

  #sendDeltaInterest(st: TypeState): void {
    const want = st.interest === "*" ? new Set(isWildcardType(st.typeUrl) ? ["*"] : []) : st.interest;
    const sub = [...want].filter((n) => !st.subscribed.has(n));
    const unsub = [...st.subscribed].filter((n) => !want.has(n));
    if (sub.length === 0 && unsub.length === 0) return;
    st.subscribed = new Set(want);
    const node = this.#node();
    this.#write(this.#o.wire.encodeDeltaRequest({
      type_url: st.typeUrl,
      resource_names_subscribe: sub,
      resource_names_unsubscribe: unsub,
      ...(node ? { node } : {}),
    }));
  }

  async #onResponse(call: GrpcStream, bytes: Uint8Array): Promise<void> {
    if (this.#call !== call) return;
    if (!this.#connected) {
      this.#connected = true;
      this.#attempt = 0;
      this.#o.sink.onConnection?.(true, "");
    }
    if (this.#o.delta) await this.#onDelta(bytes);
    else await this.#onSotw(bytes);
  }

  /**
   * Decodes a response's resources of `st`'s type; throws a one-line error naming the entry. A resource whose bytes
   * equal those of the last SotW response is not decoded again (a SotW response resends every resource; 10,000 EDS
   * assignments cost ~320 ms of decoding per response without this, ~70 ms with it). Decoded resources are shared
   * between updates: the manager never modifies them. Yields the event loop between slices.
   */
  async #decode(
    st: TypeState,
    entries: readonly { name: string; version: string; any: WireAny }[],
  ): Promise<DecodedResource[]> {
    const resources: DecodedResource[] = [];
    const seen = new Set<string>();
    const cache = new Map<string, { raw: Record<string, unknown>; text: string }>();
    const slicer = new Slicer();
    for (const [i, { name: given, version, any }] of entries.entries()) {
      await slicer.tick();
      if (any.type_url !== st.typeUrl) {
        throw new Error(`resources[${i}]: type ${any.type_url} in a response for ${st.typeUrl}`);
      }
      // Delta sends only what changed: nothing to reuse there.
      const key = this.#o.delta ? undefined : LATIN1.decode(any.value);
      let d = key === undefined ? undefined : st.decoded.get(key);
      if (d === undefined) {
        const raw = this.#o.wire.decodeResource(any.type_url, any.value);
        d = { raw, text: stableText(raw) };
      }
      if (key !== undefined) cache.set(key, d);
      const name = given !== "" ? given : resourceName(d.raw);
      if (name === "") throw new Error(`resources[${i}]: the resource has no name`);
      if (seen.has(name)) throw new Error(`resources[${i}]: ${JSON.stringify(name)} appears twice`);
      seen.add(name);
      resources.push({ name, version, raw: d.raw, text: d.text });
    }
    // The cache follows the state of the world: what the last response held (delta adds to it).
    if (this.#o.delta) { for (const [k, v] of cache) st.decoded.set(k, v); }
    else st.decoded = cache;
    return resources;
  }

  async #onSotw(bytes: Uint8Array): Promise<void> {
    let resp: DiscoveryResponse;
    try {
      resp = this.#o.wire.decodeResponse(bytes);
    } catch (e) {
      log.warn(`${this.#o.target.label}: undecodable DiscoveryResponse: ${msg(e)}`);
      return;
    }
    const st = this.#types.get(resp.type_url as TypeUrl);
    if (st === undefined) {
      log.warn(`${this.#o.target.label}: response for type ${resp.type_url} that was not asked for; ignored`);
      return;
    }
    st.nonce = resp.nonce;
    let error: string | undefined;
    try {
      const entries = resp.resources.map((any) => ({ name: "", version: resp.version_info, any }));
      const resources = await this.#decode(st, entries);
      const seen = new Set(resources.map((r) => r.name));
      const removed = isWildcardType(st.typeUrl) && st.interest === "*"
        ? [...st.held.keys()].filter((n) => !seen.has(n))
        : [];
      await this.#o.sink.onUpdate({ typeUrl: st.typeUrl, resources, removed, version: resp.version_info });
      for (const n of removed) st.held.delete(n);
      for (const r of resources) st.held.set(r.name, r.version);
      st.version = resp.version_info;
    } catch (e) {
      error = msg(e);
      log.warn(`${this.#o.target.label}: rejected ${TYPE_SHORT[st.typeUrl]} version ${resp.version_info}: ${error}`);
    }
    this.#sendSotw(st, error);
  }

  async #onDelta(bytes: Uint8Array): Promise<void> {
    let resp: DeltaDiscoveryResponse;
    try {
      resp = this.#o.wire.decodeDeltaResponse(bytes);
    } catch (e) {
      log.warn(`${this.#o.target.label}: undecodable DeltaDiscoveryResponse: ${msg(e)}`);
      return;
    }
    const st = this.#types.get(resp.type_url as TypeUrl);
    if (st === undefined) {
      log.warn(`${this.#o.target.label}: delta response for type ${resp.type_url} that was not asked for; ignored`);
      return;
    }
    st.nonce = resp.nonce;
    let error: string | undefined;
    try {
      const entries = resp.resources.flatMap((r) =>
        // A name-only entry (a heartbeat) changes nothing.
        r.resource === undefined ? [] : [{ name: r.name, version: r.version, any: r.resource }]
      );
      const resources = await this.#decode(st, entries);
      const removed = resp.removed_resources.filter((n) => st.held.has(n) || st.interest === "*");
      await this.#o.sink.onUpdate({
        typeUrl: st.typeUrl,
        resources,
        removed,
        version: resp.system_version_info,
      });
      for (const n of removed) st.held.delete(n);
      for (const r of resources) st.held.set(r.name, r.version);
    } catch (e) {
      error = msg(e);
      log.warn(`${this.#o.target.label}: rejected delta ${TYPE_SHORT[st.typeUrl]} (nonce ${resp.nonce}): ${error}`);
    }
    this.#write(this.#o.wire.encodeDeltaRequest({
      type_url: st.typeUrl,
      response_nonce: resp.nonce,
      ...(error !== undefined ? { error_detail: { code: INVALID_ARGUMENT, message: error } } : {}),
    }));
  }
}

function sameInterest(a: ReadonlySet<string> | "*", b: ReadonlySet<string> | "*"): boolean {
  if (a === "*" || b === "*") return a === b;
  if (a.size !== b.size) return false;
  for (const n of a) if (!b.has(n)) return false;
  return true;
}

function msg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
