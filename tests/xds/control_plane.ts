/**
 * A test xDS management server: `envoy.service.discovery.v3.AggregatedDiscoveryService` over `@grpc/grpc-js`,
 * state of the world (`StreamAggregatedResources`) and delta (`DeltaAggregatedResources`), behaving as
 * go-control-plane's snapshot cache does, plus a JSON control API on loopback HTTP/1.1.
 *
 * Protocol, per stream and type:
 * - **SotW**: every response carries the type's `version_info` and a fresh `nonce`. A request whose
 *   `response_nonce` is the last nonce sent is an ACK, or a NACK when it has `error_detail` (recorded; the rejected
 *   version is not sent again). Requests with an older nonce are stale and ignored. Listeners and clusters are
 *   wildcard when the names are empty (or hold `*`); other types get only the names subscribed, and a change of names
 *   is answered with the current version. A first request whose `version_info` already is the current version gets
 *   no response (a reconnecting client is up to date).
 * - **Delta**: resources carry their own version (a hash of their bytes); `resource_names_subscribe` /
 *   `resource_names_unsubscribe` change the interest (`*` is the wildcard, and so is a first request of listeners or
 *   clusters that names nothing); `initial_resource_versions` says what a reconnecting client holds, so unchanged
 *   resources are not sent again; a resource that leaves the snapshot is listed in `removed_resources`; responses
 *   carry `system_version_info` (the type's snapshot version).
 * - Both: after a response, the next one for that type waits for its ACK or NACK (as go-control-plane's watches do).
 *   The node of the first message of each stream is recorded.
 *
 * Control API (JSON; `<type>` is a type URL or `lds` `rds` `cds` `eds` `sds`):
 * - `PUT /snapshot` `{"version": "v3", "versions"?: {"<type>": "v4"}, "resources": {"<type>": [<Envoy JSON>]}}`
 *   replaces the whole snapshot and pushes it (400 `{"error": "..."}` names the bad field).
 * - `GET /state`: see {@link ControlPlaneState}.
 * - `POST /wait?type=<type>&acked=<version>[&node=<id>][&timeout_ms=N]`: `{"acked": version}` once a stream ACKs
 *   that version, `{"nacked": message}` if it is NACKed, 408 `{"timeout": true}` after `timeout_ms` (default 10 s).
 * - `POST /disconnect`: ends every open stream with UNAVAILABLE (clients reconnect).
 *
 * Run: `deno run -A tests/xds/control_plane.ts --port 0 [--admin-port 0] [--tls-cert f --tls-key f [--tls-ca f]]
 * [--snapshot file.json|yaml]`; prints `{"grpc_port":N,"admin_port":M}` on stdout when ready; SIGTERM or SIGINT
 * exits. With `--tls-ca` clients must present a certificate signed by it (mTLS). Logs go to stderr.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { parse as parseYaml } from "yaml";
import {
  ADS_SERVICE,
  CLUSTER,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
  encodeAny,
  ENDPOINT,
  LISTENER,
  ROUTE,
  SECRET,
  type WireAny,
  type WireResource,
  xdsTypes,
} from "../../xds/proto.ts";

/** Short names of the five xDS types, as the control API accepts them. */
export const SHORT_TYPES: Readonly<Record<string, string>> = {
  lds: LISTENER,
  rds: ROUTE,
  cds: CLUSTER,
  eds: ENDPOINT,
  sds: SECRET,
};

/** A snapshot as `PUT /snapshot` takes it. */
export interface SnapshotInput {
  /** The version of every type not named in `versions`. */
  readonly version: string;
  /** Per-type versions (keys: type URL or short name). */
  readonly versions?: Readonly<Record<string, string>>;
  /** Resources per type (keys: type URL or short name), as Envoy JSON; a `"@type"` key is allowed. */
  readonly resources: Readonly<Record<string, readonly Record<string, unknown>[]>>;
}

/** The last NACK of a type. */
export interface NackRecord {
  /** The version the client rejected (the one sent with `nonce`). */
  readonly version: string;
  readonly nonce: string;
  readonly message: string;
  readonly code: number;
  readonly node: string;
}

/** What `GET /state` returns. */
export interface ControlPlaneState {
  /** The snapshot's version (`version` of the last `PUT /snapshot`), "" before the first. */
  readonly version: string;
  /** Open streams. */
  readonly connected_streams: number;
  /** Streams opened since start. */
  readonly total_streams: number;
  /** The node (Envoy JSON) of every stream since start, in order. */
  readonly nodes: readonly Record<string, unknown>[];
  /** Per short type name (`lds`...). */
  readonly types: Readonly<Record<string, TypeState>>;
  /** The open streams. */
  readonly streams: readonly StreamState[];
}

/** Per-type totals over all streams. */
export interface TypeState {
  readonly type_url: string;
  /** The snapshot's version of this type. */
  readonly version: string;
  /** Versions sent, in order of first sending. */
  readonly versions_sent: readonly string[];
  /** The last version ACKed by any stream ("" for none). */
  readonly acked_version: string;
  /** Every version ACKed, in order of first ACK. */
  readonly acked_versions: readonly string[];
  readonly nacks: number;
  readonly last_nack: NackRecord | null;
  /** Open streams subscribed to this type. */
  readonly streams: number;
  readonly responses: number;
}

/** One open stream. */
export interface StreamState {
  readonly id: number;
  readonly kind: "sotw" | "delta";
  readonly node: Record<string, unknown> | null;
  /** Per short type: names subscribed (`["*"]` for a wildcard), the version last sent and ACKed, the last nonce. */
  readonly types: Readonly<
    Record<string, {
      readonly subscribed: readonly string[];
      readonly version_sent: string;
      readonly acked_version: string;
      readonly nonce: string;
      /** Delta only: the per-resource versions the client holds, as far as the server knows. */
      readonly resource_versions?: Readonly<Record<string, string>>;
    }>
  >;
}

interface Resource {
  readonly name: string;
  readonly any: WireAny;
  /** Delta's per-resource version: a hash of the bytes. */
  readonly hash: string;
}

interface TypeSnapshot {
  readonly version: string;
  readonly resources: ReadonlyMap<string, Resource>;
}

interface Snapshot {
  readonly version: string;
  readonly types: ReadonlyMap<string, TypeSnapshot>;
}

/** A type URL from a type URL or short name; throws for anything else. */
export function resolveType(key: string): string {
  const t = SHORT_TYPES[key.toLowerCase()] ?? key;
  if (!t.includes("/") || !xdsTypes().has(t)) throw new Error(`unknown resource type "${key}"`);
  return t;
}

function shortOf(typeUrl: string): string {
  for (const [k, v] of Object.entries(SHORT_TYPES)) if (v === typeUrl) return k;
  return typeUrl;
}

function isWildcardType(typeUrl: string): boolean {
  return typeUrl === LISTENER || typeUrl === CLUSTER;
}

function hashOf(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex").slice(0, 16);
}

/** Builds a snapshot from the control API's JSON; throws one line naming the bad resource and field. */
export function buildSnapshot(input: unknown): Snapshot {
  if (typeof input !== "object" || input === null) throw new Error("snapshot: expected an object");
  const s = input as Partial<SnapshotInput>;
  if (typeof s.version !== "string") throw new Error("snapshot.version: expected a string");
  const versions = new Map<string, string>();
  for (const [k, v] of Object.entries(s.versions ?? {})) {
    if (typeof v !== "string") throw new Error(`snapshot.versions.${k}: expected a string`);
    versions.set(resolveType(k), v);
  }
  const types = new Map<string, TypeSnapshot>();
  for (const t of Object.values(SHORT_TYPES)) {
    types.set(t, { version: versions.get(t) ?? s.version, resources: new Map() });
  }
  if (typeof s.resources !== "object" || s.resources === null) {
    throw new Error("snapshot.resources: expected an object");
  }
  for (const [key, list] of Object.entries(s.resources)) {
    const t = resolveType(key);
    if (!Array.isArray(list)) throw new Error(`snapshot.resources.${key}: expected an array`);
    const resources = new Map<string, Resource>();
    list.forEach((json: unknown, i) => {
      const where = `snapshot.resources.${key}[${i}]`;
      if (typeof json !== "object" || json === null) throw new Error(`${where}: expected an object`);
      const j = json as Record<string, unknown>;
      if (j["@type"] !== undefined && j["@type"] !== t) throw new Error(`${where}.@type: expected ${t}`);
      const name = t === ENDPOINT ? j.cluster_name ?? j.clusterName : j.name;
      if (typeof name !== "string" || name === "") {
        throw new Error(`${where}: ${t === ENDPOINT ? "cluster_name" : "name"} is required`);
      }
      if (resources.has(name)) throw new Error(`${where}: duplicate name "${name}"`);
      let value: Uint8Array;
      try {
        value = encodeAny(t, j);
      } catch (e) {
        throw new Error(`${where}: ${e instanceof Error ? e.message : String(e)}`);
      }
      resources.set(name, { name, any: { type_url: t, value }, hash: hashOf(value) });
    });
    types.set(t, { version: versions.get(t) ?? s.version, resources });
  }
  return { version: s.version, types };
}

/** Per-type totals kept for `GET /state` and `/wait`. */
class TypeStats {
  versionsSent: string[] = [];
  ackedVersion = "";
  ackedVersions: string[] = [];
  /** node id → versions ACKed by that node. */
  ackedByNode = new Map<string, Set<string>>();
  nacks = 0;
  lastNack: NackRecord | null = null;
  /** node id → version → NACK message. */
  nackedByNode = new Map<string, Map<string, string>>();
  responses = 0;

  constructor(readonly typeUrl: string) {}
}

interface Waiter {
  readonly type: string;
  readonly version: string;
  readonly node: string | undefined;
  readonly resolve: (r: { acked: string } | { nacked: string }) => void;
}

/** Per stream and type, SotW. */
interface SotwType {
  wildcard: boolean;
  names: Set<string>;
  /** nonce → version sent with it (only the last nonce is current). */
  nonce: string;
  versionSent: string;
  ackedVersion: string;
  awaiting: boolean;
  dirty: boolean;
}

/** Per stream and type, delta. */
interface DeltaType {
  wildcard: boolean;
  names: Set<string>;
  /** What the client holds, as far as the server knows: name → resource version. */
  held: Map<string, string>;
  nonce: string;
  versionSent: string;
  ackedVersion: string;
  awaiting: boolean;
  dirty: boolean;
}

interface StreamBase {
  readonly id: number;
  node: Record<string, unknown> | null;
  nodeId: string;
  closed: boolean;
}

interface SotwStream extends StreamBase {
  readonly kind: "sotw";
  readonly call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  readonly types: Map<string, SotwType>;
}

interface DeltaStream extends StreamBase {
  readonly kind: "delta";
  readonly call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
  readonly types: Map<string, DeltaType>;
}

type Stream = SotwStream | DeltaStream;

function log(msg: string): void {
  console.error(`control_plane: ${msg}`);
}

/** The ADS server and its state; {@link ControlPlaneServer.handleHttp} serves the control API. */
export class ControlPlaneServer {
  #snapshot: Snapshot = { version: "", types: new Map() };
  #streams = new Set<Stream>();
  #nextStream = 1;
  #nextNonce = 1;
  #totalStreams = 0;
  #nodes: Record<string, unknown>[] = [];
  #stats = new Map<string, TypeStats>();
  #waiters = new Set<Waiter>();

  constructor() {
    for (const t of Object.values(SHORT_TYPES)) this.#stats.set(t, new TypeStats(t));
    this.#snapshot = buildSnapshot({ version: "", resources: {} });
  }

  /** The grpc-js service implementation for {@link ADS_SERVICE}. */
  get implementation(): grpc.UntypedServiceImplementation {
    return {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>) =>
        this.#openSotw(call),
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>) =>
        this.#openDelta(call),
    };
  }

  /** Replaces the snapshot and pushes it to every stream. */
  setSnapshot(input: unknown): void {
    this.#snapshot = buildSnapshot(input);
    log(`snapshot ${JSON.stringify(this.#snapshot.version)}`);
    for (const s of this.#streams) {
      for (const [t, st] of s.types) {
        if (st.awaiting) st.dirty = true;
        else if (s.kind === "sotw") this.#pushSotw(s, t, st as SotwType, false);
        else this.#pushDelta(s, t, st as DeltaType);
      }
    }
  }

  /** Ends every open stream with UNAVAILABLE. */
  disconnectAll(): number {
    const n = this.#streams.size;
    for (const s of [...this.#streams]) {
      s.closed = true;
      this.#streams.delete(s);
      // grpc-js turns an 'error' event on a server stream into its status.
      s.call.emit("error", { code: grpc.status.UNAVAILABLE, details: "disconnected by the test" });
    }
    return n;
  }

  // ---- streams ----

  #register(s: Stream): void {
    this.#streams.add(s);
    this.#totalStreams++;
    const done = () => {
      if (s.closed) return;
      s.closed = true;
      this.#streams.delete(s);
    };
    s.call.on("end", () => {
      done();
      s.call.end();
    });
    s.call.on("error", done);
    s.call.on("cancelled", done);
    s.call.on("close", done);
  }

  #noteNode(s: Stream, node: Record<string, unknown> | undefined): void {
    if (s.node !== null || node === undefined) return;
    s.node = node;
    s.nodeId = typeof node.id === "string" ? node.id : "";
    this.#nodes.push(node);
  }

  #openSotw(call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>): void {
    const s: SotwStream = {
      id: this.#nextStream++,
      kind: "sotw",
      call,
      types: new Map(),
      node: null,
      nodeId: "",
      closed: false,
    };
    this.#register(s);
    call.on("data", (req: DiscoveryRequest) => {
      try {
        this.#onSotwRequest(s, req);
      } catch (e) {
        log(`stream ${s.id}: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
  }

  #openDelta(call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>): void {
    const s: DeltaStream = {
      id: this.#nextStream++,
      kind: "delta",
      call,
      types: new Map(),
      node: null,
      nodeId: "",
      closed: false,
    };
    this.#register(s);
    call.on("data", (req: DeltaDiscoveryRequest) => {
      try {
        this.#onDeltaRequest(s, req);
      } catch (e) {
        log(`stream ${s.id}: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
  }

  #typeSnapshot(t: string): TypeSnapshot {
    return this.#snapshot.types.get(t) ?? { version: this.#snapshot.version, resources: new Map() };
  }

  #stat(t: string): TypeStats {
    let st = this.#stats.get(t);
    if (!st) this.#stats.set(t, st = new TypeStats(t));
    return st;
  }

  /** Records an ACK or NACK of `version` and settles the waiters it satisfies. */
  #settle(s: Stream, t: string, version: string, nack: { code: number; message: string; nonce: string } | null): void {
    const st = this.#stat(t);
    if (nack) {
      st.nacks++;
      st.lastNack = { version, nonce: nack.nonce, message: nack.message, code: nack.code, node: s.nodeId };
      let m = st.nackedByNode.get(s.nodeId);
      if (!m) st.nackedByNode.set(s.nodeId, m = new Map());
      m.set(version, nack.message);
      log(`stream ${s.id} ${shortOf(t)}: NACK of ${JSON.stringify(version)}: ${nack.message}`);
    } else {
      st.ackedVersion = version;
      if (!st.ackedVersions.includes(version)) st.ackedVersions.push(version);
      let a = st.ackedByNode.get(s.nodeId);
      if (!a) st.ackedByNode.set(s.nodeId, a = new Set());
      a.add(version);
    }
    for (const w of [...this.#waiters]) {
      if (w.type !== t || w.version !== version || (w.node !== undefined && w.node !== s.nodeId)) continue;
      this.#waiters.delete(w);
      w.resolve(nack ? { nacked: nack.message } : { acked: version });
    }
  }

  #onSotwRequest(s: SotwStream, req: DiscoveryRequest): void {
    this.#noteNode(s, req.node);
    const t = req.type_url;
    if (!t) return;
    const names = req.resource_names ?? [];
    let st = s.types.get(t);
    const first = st === undefined;
    if (!st) {
      st = {
        wildcard: false,
        names: new Set(),
        nonce: "",
        versionSent: "",
        ackedVersion: "",
        awaiting: false,
        dirty: false,
      };
      s.types.set(t, st);
    }
    const nonce = req.response_nonce ?? "";
    if (nonce !== "" && nonce !== st.nonce) return; // stale: an answer to a response that is no longer current
    if (nonce !== "" && st.awaiting) {
      st.awaiting = false;
      if (req.error_detail) {
        this.#settle(s, t, st.versionSent, { code: req.error_detail.code, message: req.error_detail.message, nonce });
      } else {
        st.ackedVersion = st.versionSent;
        this.#settle(s, t, st.versionSent, null);
      }
    }
    const wildcard = names.includes("*") || (names.length === 0 && isWildcardType(t));
    const wanted = new Set(names.filter((n) => n !== "*"));
    const changed = wildcard !== st.wildcard || !sameSet(wanted, st.names);
    st.wildcard = wildcard;
    st.names = wanted;
    if (first) {
      // A reconnecting client that already holds the current version needs nothing.
      if ((req.version_info ?? "") === this.#typeSnapshot(t).version && (req.version_info ?? "") !== "") {
        st.versionSent = st.ackedVersion = req.version_info ?? "";
        return;
      }
      this.#pushSotw(s, t, st, true);
      return;
    }
    if (changed || st.dirty) this.#pushSotw(s, t, st, changed);
  }

  /** Sends the type's current version unless the stream has it (or `force`, for a change of names). */
  #pushSotw(s: SotwStream, t: string, st: SotwType, force: boolean): void {
    st.dirty = false;
    if (s.closed) return;
    const snap = this.#typeSnapshot(t);
    if (!force && snap.version === st.versionSent) return;
    const resources: WireAny[] = [];
    for (const r of snap.resources.values()) if (st.wildcard || st.names.has(r.name)) resources.push(r.any);
    const nonce = String(this.#nextNonce++);
    st.nonce = nonce;
    st.versionSent = snap.version;
    st.awaiting = true;
    const stats = this.#stat(t);
    stats.responses++;
    if (!stats.versionsSent.includes(snap.version)) stats.versionsSent.push(snap.version);
    s.call.write({ version_info: snap.version, resources, type_url: t, nonce });
  }

  #onDeltaRequest(s: DeltaStream, req: DeltaDiscoveryRequest): void {
    this.#noteNode(s, req.node);
    const t = req.type_url;
    if (!t) return;
    let st = s.types.get(t);
    const first = st === undefined;
    const subscribe = req.resource_names_subscribe ?? [];
    const unsubscribe = req.resource_names_unsubscribe ?? [];
    if (!st) {
      st = {
        wildcard: subscribe.includes("*") || (subscribe.length === 0 && isWildcardType(t)),
        names: new Set(),
        held: new Map(Object.entries(req.initial_resource_versions ?? {})),
        nonce: "",
        versionSent: "",
        ackedVersion: "",
        awaiting: false,
        dirty: false,
      };
      s.types.set(t, st);
    }
    const nonce = req.response_nonce ?? "";
    if (nonce !== "" && nonce === st.nonce && st.awaiting) {
      st.awaiting = false;
      if (req.error_detail) {
        this.#settle(s, t, st.versionSent, { code: req.error_detail.code, message: req.error_detail.message, nonce });
      } else {
        st.ackedVersion = st.versionSent;
        this.#settle(s, t, st.versionSent, null);
      }
    }
    let changed = first;
    for (const n of subscribe) {
      if (n === "*") {
        if (!st.wildcard) changed = true;
        st.wildcard = true;
      } else if (!st.names.has(n)) {
        st.names.add(n);
        changed = true;
      }
    }
    for (const n of unsubscribe) {
      if (n === "*") st.wildcard = false;
      else st.names.delete(n);
      // The client forgets what it unsubscribed from: a later subscribe sends it again.
      if (n !== "*") st.held.delete(n);
    }
    if (st.awaiting) {
      if (changed) st.dirty = true;
      return;
    }
    if (changed || st.dirty) this.#pushDelta(s, t, st);
  }

  /** Sends what the client lacks (new or changed resources) and what it must drop, if anything. */
  #pushDelta(s: DeltaStream, t: string, st: DeltaType): void {
    st.dirty = false;
    if (s.closed) return;
    const snap = this.#typeSnapshot(t);
    const resources: WireResource[] = [];
    const removed: string[] = [];
    for (const r of snap.resources.values()) {
      if (!st.wildcard && !st.names.has(r.name)) continue;
      if (st.held.get(r.name) === r.hash) continue;
      resources.push({ name: r.name, version: r.hash, resource: r.any });
    }
    for (const name of st.held.keys()) {
      if (!snap.resources.has(name) && (st.wildcard || st.names.has(name))) removed.push(name);
    }
    if (resources.length === 0 && removed.length === 0) return;
    for (const r of resources) st.held.set(r.name, r.version);
    for (const n of removed) st.held.delete(n);
    const nonce = String(this.#nextNonce++);
    st.nonce = nonce;
    st.versionSent = snap.version;
    st.awaiting = true;
    const stats = this.#stat(t);
    stats.responses++;
    if (!stats.versionsSent.includes(snap.version)) stats.versionsSent.push(snap.version);
    s.call.write({ system_version_info: snap.version, resources, type_url: t, removed_resources: removed, nonce });
  }

  // ---- control API ----

  /** The state `GET /state` returns. */
  state(): ControlPlaneState {
    const types: Record<string, TypeState> = {};
    for (const [t, st] of this.#stats) {
      let streams = 0;
      for (const s of this.#streams) if (s.types.has(t)) streams++;
      types[shortOf(t)] = {
        type_url: t,
        version: this.#typeSnapshot(t).version,
        versions_sent: [...st.versionsSent],
        acked_version: st.ackedVersion,
        acked_versions: [...st.ackedVersions],
        nacks: st.nacks,
        last_nack: st.lastNack,
        streams,
        responses: st.responses,
      };
    }
    const streams: StreamState[] = [...this.#streams].map((s) => {
      const ts: Record<string, StreamState["types"][string]> = {};
      for (const [t, st] of s.types as Map<string, SotwType | DeltaType>) {
        const base = {
          subscribed: st.wildcard ? ["*", ...st.names] : [...st.names],
          version_sent: st.versionSent,
          acked_version: st.ackedVersion,
          nonce: st.nonce,
        };
        ts[shortOf(t)] = "held" in st ? { ...base, resource_versions: Object.fromEntries(st.held) } : base;
      }
      return { id: s.id, kind: s.kind, node: s.node, types: ts };
    });
    return {
      version: this.#snapshot.version,
      connected_streams: this.#streams.size,
      total_streams: this.#totalStreams,
      nodes: [...this.#nodes],
      types,
      streams,
    };
  }

  /** Resolves when `version` of type `t` is ACKed (or NACKed) — at once if it already was. */
  wait(t: string, version: string, node: string | undefined, timeoutMs: number) {
    const st = this.#stat(t);
    const nodes = node === undefined ? [...st.ackedByNode.keys(), ...st.nackedByNode.keys()] : [node];
    for (const n of nodes) {
      if (st.ackedByNode.get(n)?.has(version)) return Promise.resolve({ acked: version });
      const nacked = st.nackedByNode.get(n)?.get(version);
      if (nacked !== undefined) return Promise.resolve({ nacked });
    }
    return new Promise<{ acked: string } | { nacked: string } | { timeout: true }>((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(w);
        resolve({ timeout: true });
      }, timeoutMs);
      const w: Waiter = {
        type: t,
        version,
        node,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      };
      this.#waiters.add(w);
    });
  }

  /** Serves the control API. */
  async handleHttp(req: Request): Promise<Response> {
    const url = new URL(req.url);
    try {
      if (req.method === "PUT" && url.pathname === "/snapshot") {
        let body: unknown;
        try {
          body = await req.json();
        } catch (e) {
          return json(400, { error: `snapshot: invalid JSON: ${e instanceof Error ? e.message : String(e)}` });
        }
        this.setSnapshot(body);
        return json(200, { version: this.#snapshot.version });
      }
      if (req.method === "GET" && url.pathname === "/state") return json(200, this.state());
      if (req.method === "POST" && url.pathname === "/wait") {
        const type = resolveType(url.searchParams.get("type") ?? "");
        const version = url.searchParams.get("acked");
        if (version === null) return json(400, { error: "wait: acked=<version> is required" });
        const timeoutMs = Math.min(Number(url.searchParams.get("timeout_ms") ?? 10_000) || 10_000, 120_000);
        const r = await this.wait(type, version, url.searchParams.get("node") ?? undefined, timeoutMs);
        return json("timeout" in r ? 408 : 200, r);
      }
      if (req.method === "POST" && url.pathname === "/disconnect") return json(200, { closed: this.disconnectAll() });
      return json(404, { error: `no route for ${req.method} ${url.pathname}` });
    } catch (e) {
      return json(400, { error: e instanceof Error ? e.message : String(e) });
    }
  }
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

/** Command-line options of the process. */
export interface ControlPlaneArgs {
  readonly port: number;
  readonly adminPort: number;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly tlsCa?: string;
  readonly snapshot?: string;
}

/** Parses `--port N --admin-port N --tls-cert f --tls-key f --tls-ca f --snapshot f`. */
export function parseArgs(args: readonly string[]): ControlPlaneArgs {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`control_plane: unexpected argument ${JSON.stringify(a)}`);
    const v = m[2] ?? args[++i];
    if (v === undefined) throw new Error(`control_plane: --${m[1]} needs a value`);
    out[m[1]!] = v;
  }
  const known = new Set(["port", "admin-port", "tls-cert", "tls-key", "tls-ca", "snapshot"]);
  for (const k of Object.keys(out)) if (!known.has(k)) throw new Error(`control_plane: unknown flag --${k}`);
  const port = Number(out.port ?? 0);
  const adminPort = Number(out["admin-port"] ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`control_plane: --port: bad port`);
  if (!Number.isInteger(adminPort) || adminPort < 0 || adminPort > 65535) {
    throw new Error(`control_plane: --admin-port: bad port`);
  }
  if ((out["tls-cert"] === undefined) !== (out["tls-key"] === undefined)) {
    throw new Error("control_plane: --tls-cert and --tls-key go together");
  }
  const r: { -readonly [K in keyof ControlPlaneArgs]: ControlPlaneArgs[K] } = { port, adminPort };
  if (out["tls-cert"] !== undefined) r.tlsCert = out["tls-cert"];
  if (out["tls-key"] !== undefined) r.tlsKey = out["tls-key"];
  if (out["tls-ca"] !== undefined) r.tlsCa = out["tls-ca"];
  if (out.snapshot !== undefined) r.snapshot = out.snapshot;
  return r;
}

/** A running control plane: the gRPC server and the control API. */
export interface RunningControlPlane {
  readonly server: ControlPlaneServer;
  readonly grpcPort: number;
  readonly adminPort: number;
  close(): Promise<void>;
}

/** Starts the gRPC server and the control API on loopback. */
export async function runControlPlane(args: ControlPlaneArgs): Promise<RunningControlPlane> {
  const server = new ControlPlaneServer();
  if (args.snapshot !== undefined) {
    const text = await Deno.readTextFile(args.snapshot);
    server.setSnapshot(/\.ya?ml$/i.test(args.snapshot) ? parseYaml(text) : JSON.parse(text));
  }
  const grpcServer = new grpc.Server();
  grpcServer.addService(ADS_SERVICE as unknown as grpc.ServiceDefinition, server.implementation);
  // The per-type services (a client's api_config_source for one type) take the same streams: each carries the
  // types its client asks for.
  for (
    const [service, stream, delta] of [
      ["envoy.service.listener.v3.ListenerDiscoveryService", "StreamListeners", "DeltaListeners"],
      ["envoy.service.cluster.v3.ClusterDiscoveryService", "StreamClusters", "DeltaClusters"],
      ["envoy.service.route.v3.RouteDiscoveryService", "StreamRoutes", "DeltaRoutes"],
      ["envoy.service.endpoint.v3.EndpointDiscoveryService", "StreamEndpoints", "DeltaEndpoints"],
      ["envoy.service.secret.v3.SecretDiscoveryService", "StreamSecrets", "DeltaSecrets"],
    ] as const
  ) {
    const def = {
      [stream]: { ...ADS_SERVICE.StreamAggregatedResources, path: `/${service}/${stream}`, originalName: stream },
      [delta]: { ...ADS_SERVICE.DeltaAggregatedResources, path: `/${service}/${delta}`, originalName: delta },
    };
    const impl = server.implementation;
    grpcServer.addService(def as unknown as grpc.ServiceDefinition, {
      [stream]: impl["StreamAggregatedResources"]!,
      [delta]: impl["DeltaAggregatedResources"]!,
    });
  }
  let creds = grpc.ServerCredentials.createInsecure();
  if (args.tlsCert !== undefined && args.tlsKey !== undefined) {
    const pair = {
      cert_chain: Buffer.from(await Deno.readFile(args.tlsCert)),
      private_key: Buffer.from(await Deno.readFile(args.tlsKey)),
    };
    const ca = args.tlsCa === undefined ? null : Buffer.from(await Deno.readFile(args.tlsCa));
    creds = grpc.ServerCredentials.createSsl(ca, [pair], ca !== null);
  }
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync(`127.0.0.1:${args.port}`, creds, (e, port) => e ? reject(e) : resolve(port))
  );
  const admin = Deno.serve(
    { hostname: "127.0.0.1", port: args.adminPort, onListen: () => {} },
    (req) => server.handleHttp(req),
  );
  return {
    server,
    grpcPort,
    adminPort: admin.addr.port,
    close: async () => {
      server.disconnectAll();
      grpcServer.forceShutdown();
      await admin.shutdown();
    },
  };
}

async function main(): Promise<void> {
  let args: ControlPlaneArgs;
  try {
    args = parseArgs(Deno.args);
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    Deno.exit(2);
  }
  let cp: RunningControlPlane;
  try {
    cp = await runControlPlane(args);
  } catch (e) {
    console.error(`control_plane: ${e instanceof Error ? e.message : String(e)}`);
    Deno.exit(1);
  }
  // Exit at once: a graceful shutdown would send HTTP/2 GOAWAY, and a node:http2 client receiving one in a Deno
  // process (a grpc-js client in a test) can abort that whole process (denoland/deno#36788). A killed control
  // plane is also what a crash looks like to its clients.
  const stop = () => Deno.exit(0);
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  console.log(JSON.stringify({ grpc_port: cp.grpcPort, admin_port: cp.adminPort }));
}

if (import.meta.main) await main();
