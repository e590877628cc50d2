/**
 * The bench's ADS server: `envoy.service.discovery.v3.AggregatedDiscoveryService` (state of the world and delta) over
 * `@grpc/grpc-js` with the protos of `xds/proto.ts`, holding resources already encoded and changed a few at a time.
 *
 * Why not `tests/xds/control_plane.ts`: its `PUT /snapshot` re-encodes the whole snapshot from JSON on every change
 * (10,000 clusters + 10,000 assignments + 10,000 routes: 0.8–2.4 s of CPU per push measured on the shared machine),
 * so it cannot push 10 times a second, and its ACK times reach the bench only through `/wait` over HTTP. Here a push
 * costs what a real control plane pays (encode what changed, serialize the response) and every ACK is timestamped
 * on the stream itself. The protocol is the same as the test server's (go-control-plane semantics): SotW responses
 * carry the type's version and a fresh nonce, delta responses only the resources the client lacks; after a response
 * the next one for that type waits for its ACK or NACK, so pushes that come faster than ACKs are coalesced.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import {
  ADS_SERVICE,
  CLUSTER,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
  LISTENER,
  type WireAny,
  type WireResource,
} from "../xds/proto.ts";

/** One resource as served: its encoded `Any` and its delta version. */
export interface ServedResource {
  readonly any: WireAny;
  readonly version: string;
}

/** An ACK or NACK as seen on the stream. */
export interface AckEvent {
  readonly typeUrl: string;
  /** The version the response carried (SotW `version_info`, delta `system_version_info`). */
  readonly version: string;
  /** Resources the client holds of this type after it (SotW: how many the response carried). */
  readonly held: number;
  /** `performance.now()` when the request arrived. */
  readonly at: number;
  /** The NACK's message, or undefined for an ACK. */
  readonly nack: string | undefined;
}

interface TypeStore {
  version: string;
  readonly resources: Map<string, ServedResource>;
}

interface Sub {
  wildcard: boolean;
  names: Set<string>;
  /** Delta: name → version the client holds. */
  held: Map<string, string>;
  nonce: string;
  versionSent: string;
  countSent: number;
  awaiting: boolean;
  dirty: boolean;
}

function isWildcardType(t: string): boolean {
  return t === LISTENER || t === CLUSTER;
}

function newSub(): Sub {
  return {
    wildcard: false,
    names: new Set(),
    held: new Map(),
    nonce: "",
    versionSent: "",
    countSent: 0,
    awaiting: false,
    dirty: false,
  };
}

type SotwCall = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;
type DeltaCall = grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

interface Stream {
  readonly kind: "sotw" | "delta";
  readonly call: SotwCall | DeltaCall;
  readonly subs: Map<string, Sub>;
  closed: boolean;
}

/** The ADS server; {@link BenchControlPlane.update} changes resources and pushes them. */
export class BenchControlPlane {
  #types = new Map<string, TypeStore>();
  #streams = new Set<Stream>();
  #nonce = 1;
  #server: grpc.Server | undefined;
  /** Called on every ACK and NACK. */
  onAck: (e: AckEvent) => void = () => {};
  /** Milliseconds spent in `call.write` (serializing responses), in total. */
  writeMs = 0;
  /** Responses sent, in total. */
  responses = 0;

  /** Binds on 127.0.0.1 (port 0 = any); returns the port. */
  async listen(port = 0): Promise<number> {
    const server = new grpc.Server({
      "grpc.max_send_message_length": 256 * 1024 * 1024,
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
    });
    server.addService(ADS_SERVICE as unknown as grpc.ServiceDefinition, {
      StreamAggregatedResources: (call: SotwCall) => this.#open("sotw", call),
      DeltaAggregatedResources: (call: DeltaCall) => this.#open("delta", call),
    });
    this.#server = server;
    return await new Promise<number>((resolve, reject) =>
      server.bindAsync(
        `127.0.0.1:${port}`,
        grpc.ServerCredentials.createInsecure(),
        (e, p) => e ? reject(e) : resolve(p),
      )
    );
  }

  /** Ends every stream and stops the server. */
  close(): void {
    for (const s of this.#streams) s.closed = true;
    this.#streams.clear();
    this.#server?.forceShutdown();
  }

  /** Open streams. */
  get streams(): number {
    return this.#streams.size;
  }

  /**
   * Sets `version` of `typeUrl` and applies `changes` (name → resource, or null to remove it); then pushes that type
   * to every stream (or marks it dirty where a response awaits its ACK). Returns ms spent writing responses.
   */
  update(typeUrl: string, version: string, changes: ReadonlyMap<string, ServedResource | null>): number {
    const store = this.#store(typeUrl);
    store.version = version;
    for (const [name, r] of changes) {
      if (r === null) store.resources.delete(name);
      else store.resources.set(name, r);
    }
    const t0 = performance.now();
    for (const s of this.#streams) {
      const sub = s.subs.get(typeUrl);
      if (sub === undefined) continue;
      if (sub.awaiting) sub.dirty = true;
      else this.#push(s, typeUrl, sub, false);
    }
    return performance.now() - t0;
  }

  #store(t: string): TypeStore {
    let st = this.#types.get(t);
    if (!st) this.#types.set(t, st = { version: "", resources: new Map() });
    return st;
  }

  #open(kind: "sotw" | "delta", call: SotwCall | DeltaCall): void {
    const s: Stream = { kind, call, subs: new Map(), closed: false };
    this.#streams.add(s);
    const done = () => {
      s.closed = true;
      this.#streams.delete(s);
    };
    call.on("end", () => {
      done();
      call.end();
    });
    call.on("error", done);
    call.on("cancelled", done);
    call.on("close", done);
    call.on("data", (req: DiscoveryRequest | DeltaDiscoveryRequest) => {
      const at = performance.now();
      try {
        if (kind === "sotw") this.#onSotw(s, req as DiscoveryRequest, at);
        else this.#onDelta(s, req as DeltaDiscoveryRequest, at);
      } catch (e) {
        console.error(`bench control plane: ${e instanceof Error ? e.message : String(e)}`);
      }
    });
  }

  #settle(s: Stream, t: string, sub: Sub, at: number, nack: string | undefined): void {
    sub.awaiting = false;
    const held = s.kind === "delta" ? sub.held.size : sub.countSent;
    this.onAck({ typeUrl: t, version: sub.versionSent, held, at, nack });
  }

  #onSotw(s: Stream, req: DiscoveryRequest, at: number): void {
    const t = req.type_url;
    if (!t) return;
    let sub = s.subs.get(t);
    const first = sub === undefined;
    if (!sub) s.subs.set(t, sub = newSub());
    const nonce = req.response_nonce ?? "";
    if (nonce !== "" && nonce !== sub.nonce) return; // stale
    const names = req.resource_names ?? [];
    const wildcard = names.includes("*") || (names.length === 0 && isWildcardType(t));
    const wanted = new Set(names.filter((n) => n !== "*"));
    const changed = wildcard !== sub.wildcard || !sameSet(wanted, sub.names);
    sub.wildcard = wildcard;
    sub.names = wanted;
    if (nonce !== "" && sub.awaiting) {
      this.#settle(s, t, sub, at, req.error_detail ? req.error_detail.message : undefined);
    }
    if (first || changed || sub.dirty) this.#push(s, t, sub, first || changed);
  }

  #onDelta(s: Stream, req: DeltaDiscoveryRequest, at: number): void {
    const t = req.type_url;
    if (!t) return;
    let sub = s.subs.get(t);
    const first = sub === undefined;
    const subscribe = req.resource_names_subscribe ?? [];
    const unsubscribe = req.resource_names_unsubscribe ?? [];
    if (!sub) {
      s.subs.set(t, sub = newSub());
      sub.wildcard = subscribe.includes("*") || (subscribe.length === 0 && isWildcardType(t));
      sub.held = new Map(Object.entries(req.initial_resource_versions ?? {}));
    }
    const nonce = req.response_nonce ?? "";
    let changed = first;
    for (const n of subscribe) {
      if (n === "*") {
        if (!sub.wildcard) changed = true;
        sub.wildcard = true;
      } else if (!sub.names.has(n)) {
        sub.names.add(n);
        changed = true;
      }
    }
    for (const n of unsubscribe) {
      if (n === "*") sub.wildcard = false;
      else {
        sub.names.delete(n);
        sub.held.delete(n);
      }
    }
    if (nonce !== "" && nonce === sub.nonce && sub.awaiting) {
      this.#settle(s, t, sub, at, req.error_detail ? req.error_detail.message : undefined);
    }
    if (sub.awaiting) {
      if (changed) sub.dirty = true;
      return;
    }
    // The first response comes even when empty: the client's initial fetch completes with it.
    if (changed || sub.dirty) this.#push(s, t, sub, first);
  }

  #push(s: Stream, t: string, sub: Sub, force: boolean): void {
    sub.dirty = false;
    if (s.closed) return;
    const store = this.#store(t);
    const nonce = String(this.#nonce++);
    const t0 = performance.now();
    if (s.kind === "sotw") {
      if (!force && store.version === sub.versionSent) return;
      const resources: WireAny[] = [];
      if (sub.wildcard) { for (const r of store.resources.values()) resources.push(r.any); }
      else {
        for (const n of sub.names) {
          const r = store.resources.get(n);
          if (r) resources.push(r.any);
        }
      }
      sub.nonce = nonce;
      sub.versionSent = store.version;
      sub.countSent = resources.length;
      sub.awaiting = true;
      (s.call as SotwCall).write({ version_info: store.version, resources, type_url: t, nonce });
    } else {
      const resources: WireResource[] = [];
      const removed: string[] = [];
      const consider = (name: string, r: ServedResource | undefined) => {
        if (r === undefined) {
          if (sub.held.has(name)) removed.push(name);
        } else if (sub.held.get(name) !== r.version) {
          resources.push({ name, version: r.version, resource: r.any });
        }
      };
      if (sub.wildcard) { for (const [n, r] of store.resources) consider(n, r); }
      else for (const n of sub.names) consider(n, store.resources.get(n));
      if (sub.wildcard) { for (const n of sub.held.keys()) if (!store.resources.has(n)) removed.push(n); }
      if (resources.length === 0 && removed.length === 0 && !force) return;
      for (const r of resources) sub.held.set(r.name, r.version);
      for (const n of removed) sub.held.delete(n);
      sub.nonce = nonce;
      sub.versionSent = store.version;
      sub.countSent = resources.length;
      sub.awaiting = true;
      (s.call as DeltaCall).write({
        system_version_info: store.version,
        resources,
        type_url: t,
        removed_resources: removed,
        nonce,
      });
    }
    this.responses++;
    this.writeMs += performance.now() - t0;
  }
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}
