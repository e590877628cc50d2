/**
 * Envoy's xDS protos, loaded with protobufjs from the `.proto` files that `@grpc/grpc-js-xds` ships, and the
 * conversion between protobuf bytes and the JSON shape of Envoy's YAML that the config readers take:
 *
 * - {@link decodeAny}: resource bytes → Envoy JSON. snake_case field names (as in the `.proto`), enums by name,
 *   nested `Any` → `{"@type": url, ...fields}`, `Duration` → `"1.500s"`, `Timestamp` → RFC 3339, `Struct` → plain
 *   JSON, wrappers → the scalar, 64-bit integers → a number when exact else a decimal string, bytes → base64, maps →
 *   objects; unset fields and default proto3 scalars are omitted (set `optional` and oneof members are kept).
 *   `udpa.type.v1.TypedStruct` and `xds.type.v3.TypedStruct` are unwrapped to `{"@type": type_url, ...value}` (and
 *   normalized through the inner type when it is loaded).
 * - An `Any` whose type is not loaded decodes to `{"@type": url, "value": "<base64 of the bytes>"}`, with the raw
 *   bytes also kept under the non-enumerable symbol {@link OPAQUE_ANY} (see {@link opaqueAnyBytes}); it is not an
 *   error at decode time — the config readers reject (or ignore) the `@type` with their own message.
 * - {@link encodeAny} / {@link toAny}: the reverse, accepting snake_case or lowerCamelCase keys, durations as
 *   `"5s"`, `Any` as `{"@type": ...}`, `Struct` as plain JSON. An `Any` of a type that is not loaded is sent as an
 *   `xds.type.v3.TypedStruct` (how Envoy carries configs of types it has no proto for), except
 *   `{"@type", "value": "<base64>"}` and decoded opaque Anys, which are sent as their raw bytes.
 * - The discovery messages (`DiscoveryRequest`, `DiscoveryResponse`, `DeltaDiscoveryRequest`,
 *   `DeltaDiscoveryResponse`) as plain objects whose resources stay undecoded `{type_url, value}`, with gRPC codecs
 *   ({@link DISCOVERY_CODECS}, {@link ADS_SERVICE}) and an {@link XdsWire} ({@link createXdsWire}).
 *
 * The protos load once per process, on first use (about 0.25 s, measured: see {@link loadXdsTypes}).
 *
 * @module
 */
import { Buffer } from "node:buffer";
// deno-lint-ignore no-import-prefix -- the proto files' package, located through its package.json; not imported as code
import xdsPackage from "npm:@grpc/grpc-js-xds@1.14.1/package.json" with { type: "json" };
// deno-lint-ignore no-import-prefix -- protobufjs' bundled descriptor.proto, which the Envoy protos' options extend
import descriptorJson from "npm:protobufjs@^7.4.0/google/protobuf/descriptor.json" with { type: "json" };
import protobuf from "protobufjs";
import {
  base64ToBytes,
  bytesToBase64,
  describe,
  durationFromJson,
  durationToJson,
  fieldMaskFromJson,
  fieldMaskToJson,
  int64ToJson,
  isLong,
  timestampFromJson,
  timestampToJson,
} from "./_well_known.ts";
import type {
  DeltaDiscoveryRequest,
  DeltaDiscoveryResponse,
  DiscoveryRequest,
  DiscoveryResponse,
  WireAny,
  WireResource,
  WireStatus,
  XdsWire,
} from "./wire.ts";

export type {
  DeltaDiscoveryRequest,
  DeltaDiscoveryResponse,
  DiscoveryRequest,
  DiscoveryResponse,
  WireAny,
  WireResource,
  WireStatus,
  XdsWire,
};

/** The prefix of every Envoy type URL. */
export const TYPE_URL_PREFIX = "type.googleapis.com/";
/** LDS type URL (`envoy.config.listener.v3.Listener`). */
export const LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener";
/** RDS type URL (`envoy.config.route.v3.RouteConfiguration`). */
export const ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
/** CDS type URL (`envoy.config.cluster.v3.Cluster`). */
export const CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
/** EDS type URL (`envoy.config.endpoint.v3.ClusterLoadAssignment`). */
export const ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
/** SDS type URL (`envoy.extensions.transport_sockets.tls.v3.Secret`). */
export const SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
/** The type URL of `xds.type.v3.TypedStruct`, which carries configs of types without a loaded proto. */
export const TYPED_STRUCT = "type.googleapis.com/xds.type.v3.TypedStruct";
/** The type URL of the older `udpa.type.v1.TypedStruct`. */
export const UDPA_TYPED_STRUCT = "type.googleapis.com/udpa.type.v1.TypedStruct";

/** The full method paths of `envoy.service.discovery.v3.AggregatedDiscoveryService`. */
export const ADS_METHODS = {
  sotw: "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
  delta: "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources",
} as const;

/**
 * The symbol under which a decoded `Any` of a type that is not loaded keeps its raw bytes (non-enumerable, so it
 * is invisible to JSON and to the config readers' unknown-field checks).
 */
export const OPAQUE_ANY: unique symbol = Symbol("ferry.xds.opaqueAny");

/** The raw bytes of an `Any` whose type was not loaded at decode time, or undefined for any other object. */
export function opaqueAnyBytes(obj: unknown): Uint8Array | undefined {
  if (typeof obj !== "object" || obj === null) return undefined;
  const v = (obj as { [OPAQUE_ANY]?: unknown })[OPAQUE_ANY];
  return v instanceof Uint8Array ? v : undefined;
}

/** The proto files loaded (each with its imports), relative to the include directories. */
const ROOT_FILES: readonly string[] = [
  "envoy/service/discovery/v3/ads.proto",
  "envoy/service/discovery/v3/discovery.proto",
  "envoy/config/listener/v3/listener.proto",
  "envoy/config/route/v3/route.proto",
  "envoy/config/cluster/v3/cluster.proto",
  "envoy/config/endpoint/v3/endpoint.proto",
  "envoy/config/bootstrap/v3/bootstrap.proto",
  "envoy/extensions/transport_sockets/tls/v3/tls.proto",
  "envoy/extensions/transport_sockets/tls/v3/secret.proto",
  "envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto",
  "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
  "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto",
  "envoy/extensions/filters/network/rbac/v3/rbac.proto",
  "envoy/extensions/filters/network/local_ratelimit/v3/local_rate_limit.proto",
  "envoy/extensions/filters/network/connection_limit/v3/connection_limit.proto",
  "envoy/extensions/filters/http/router/v3/router.proto",
  "envoy/extensions/filters/http/fault/v3/fault.proto",
  "envoy/extensions/filters/http/grpc_web/v3/grpc_web.proto",
  "envoy/extensions/filters/http/health_check/v3/health_check.proto",
  "envoy/extensions/filters/http/rbac/v3/rbac.proto",
  "envoy/extensions/filters/http/cors/v3/cors.proto",
  "envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto",
  "envoy/extensions/filters/http/header_mutation/v3/header_mutation.proto",
  "envoy/extensions/filters/http/buffer/v3/buffer.proto",
  "envoy/extensions/filters/http/compressor/v3/compressor.proto",
  "envoy/extensions/compression/gzip/compressor/v3/gzip.proto",
  "envoy/extensions/compression/brotli/compressor/v3/brotli.proto",
  "envoy/extensions/compression/zstd/compressor/v3/zstd.proto",
  "envoy/extensions/filters/http/decompressor/v3/decompressor.proto",
  "envoy/extensions/compression/gzip/decompressor/v3/gzip.proto",
  "envoy/extensions/compression/brotli/decompressor/v3/brotli.proto",
  "envoy/extensions/compression/zstd/decompressor/v3/zstd.proto",
  "envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto",
  "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto",
  "envoy/extensions/filters/listener/proxy_protocol/v3/proxy_protocol.proto",
  "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
  "envoy/extensions/access_loggers/file/v3/file.proto",
  "envoy/extensions/access_loggers/stream/v3/stream.proto",
  "envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto",
  "envoy/extensions/load_balancing_policies/least_request/v3/least_request.proto",
  "envoy/extensions/load_balancing_policies/random/v3/random.proto",
  "envoy/extensions/load_balancing_policies/ring_hash/v3/ring_hash.proto",
  "envoy/extensions/load_balancing_policies/maglev/v3/maglev.proto",
  "envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto",
  "udpa/type/v1/typed_struct.proto",
  "xds/type/v3/typed_struct.proto",
  "google/protobuf/any.proto",
  "google/protobuf/duration.proto",
  "google/protobuf/struct.proto",
  "google/protobuf/wrappers.proto",
  "google/protobuf/timestamp.proto",
  "google/protobuf/empty.proto",
  "google/protobuf/field_mask.proto",
  "google/rpc/status.proto",
];

type Json = Record<string, unknown>;

/** A protobufjs message as decoded: fields by their `.proto` names. */
type PbMessage = Record<string, unknown>;

/** The loaded protos and the conversions that need them. Obtain with {@link loadXdsTypes} or {@link xdsTypes}. */
export interface XdsTypes {
  /** The protobufjs root holding every loaded type. */
  readonly root: protobuf.Root;
  /** How long loading took, in milliseconds (read and parse the files, resolve all types). */
  readonly loadMs: number;
  /** How many `.proto` files were parsed. */
  readonly fileCount: number;
  /** True when the message named by `typeUrl` (text after its last `/`) is loaded. */
  has(typeUrl: string): boolean;
  /** See {@link decodeAny}. */
  decodeAny(typeUrl: string, bytes: Uint8Array): Json;
  /** See {@link encodeAny}. */
  encodeAny(typeUrl: string, json: Json): Uint8Array;
}

/** The include directories inside `@grpc/grpc-js-xds`, in the order its own loader uses. */
function includeDirs(): URL[] {
  const pkg = new URL(".", import.meta.resolve("npm:@grpc/grpc-js-xds@1.14.1/package.json"));
  return ["deps/envoy-api/", "deps/xds/", "deps/protoc-gen-validate/", "deps/googleapis/"].map((d) => new URL(d, pkg));
}

let loaded: Types | undefined;

/**
 * Loads the protos (once per process) and returns them. Synchronous file reads: the first call takes about
 * 0.25 s; later calls return the same object.
 */
export function xdsTypes(): XdsTypes {
  loaded ??= loadTypes();
  return loaded;
}

/** {@link xdsTypes} as a Promise, for callers that preload at startup. */
export function loadXdsTypes(): Promise<XdsTypes> {
  try {
    return Promise.resolve(xdsTypes());
  } catch (e) {
    return Promise.reject(e);
  }
}

function loadTypes(): Types {
  const t0 = performance.now();
  const { root, files } = loadProtoRoot(ROOT_FILES, "xds protos");
  return new Types(root, performance.now() - t0, files);
}

/**
 * Parses `rootFiles` and everything they import from `@grpc/grpc-js-xds`'s include directories (protobufjs'
 * bundled `google/protobuf/*` and `descriptor.proto` first) into a new resolved Root, synchronously; `files` counts
 * the `.proto` files read. A file found in no include directory throws an Error that starts with `what`.
 */
export function loadProtoRoot(rootFiles: readonly string[], what: string): { root: protobuf.Root; files: number } {
  const root = new protobuf.Root();
  root.addJSON((descriptorJson as { nested: protobuf.INamespace["nested"] & object }).nested);
  const dirs = includeDirs();
  const seen = new Set<string>(["google/protobuf/descriptor.proto"]);
  let files = 0;
  const load = (name: string): void => {
    if (seen.has(name)) return;
    seen.add(name);
    const common = protobuf.common.get(name);
    if (common) {
      root.addJSON(common.nested ?? {});
      return;
    }
    for (const dir of dirs) {
      let text: string;
      try {
        text = Deno.readTextFileSync(new URL(name, dir));
      } catch {
        continue;
      }
      files++;
      const parsed = protobuf.parse(text, root, { keepCase: true });
      for (const i of parsed.imports ?? []) load(i);
      for (const i of parsed.weakImports ?? []) load(i);
      return;
    }
    throw new Error(`${what}: ${name} not found in @grpc/grpc-js-xds@${xdsPackage.version}/deps`);
  };
  for (const f of rootFiles) load(f);
  root.resolveAll();
  return { root, files };
}

/** The name of the message a type URL names: the text after its last `/`. */
function typeName(typeUrl: string): string {
  const i = typeUrl.lastIndexOf("/");
  return i < 0 ? typeUrl : typeUrl.slice(i + 1);
}

const WRAPPERS = new Set([
  "google.protobuf.DoubleValue",
  "google.protobuf.FloatValue",
  "google.protobuf.Int64Value",
  "google.protobuf.UInt64Value",
  "google.protobuf.Int32Value",
  "google.protobuf.UInt32Value",
  "google.protobuf.BoolValue",
  "google.protobuf.StringValue",
  "google.protobuf.BytesValue",
]);
const TYPED_STRUCTS = new Set(["udpa.type.v1.TypedStruct", "xds.type.v3.TypedStruct"]);
/** Well-known types whose JSON is not an object: inside an `Any` they go under `"value"`. */
const SPECIAL_JSON = new Set([
  ...WRAPPERS,
  "google.protobuf.Duration",
  "google.protobuf.Timestamp",
  "google.protobuf.FieldMask",
  "google.protobuf.Struct",
  "google.protobuf.Value",
  "google.protobuf.ListValue",
]);
const LONG_TYPES = new Set(["int64", "uint64", "sint64", "fixed64", "sfixed64"]);
const INT32_TYPES = new Set(["int32", "sint32", "sfixed32"]);
const UINT32_TYPES = new Set(["uint32", "fixed32"]);

/** A conversion failure at a field path; turned into the one-line error by the public functions. */
class PathError extends Error {
  constructor(readonly path: string, readonly detail: string) {
    super(`${path}: ${detail}`);
  }
}

function join(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  return path === "" ? key : `${path}.${key}`;
}

const FULL_NAMES = new WeakMap<protobuf.ReflectionObject, string>();

/**
 * A type's full name without the leading dot. Cached: protobufjs rebuilds `fullName` from the parent chain on every
 * read (decoding 10,000 ClusterLoadAssignments took ~100 ms with it, ~40 ms cached; bench/_xds_findings.md).
 */
function fullName(t: protobuf.ReflectionObject): string {
  let n = FULL_NAMES.get(t);
  if (n === undefined) {
    const f = t.fullName;
    n = f.startsWith(".") ? f.slice(1) : f;
    FULL_NAMES.set(t, n);
  }
  return n;
}

function camel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function isPlainObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** The implementation behind {@link XdsTypes}. */
class Types implements XdsTypes {
  readonly root: protobuf.Root;
  readonly loadMs: number;
  readonly fileCount: number;
  #types = new Map<string, protobuf.Type | null>();
  #keys = new WeakMap<protobuf.Type, Map<string, protobuf.Field>>();

  constructor(root: protobuf.Root, loadMs: number, fileCount: number) {
    this.root = root;
    this.loadMs = loadMs;
    this.fileCount = fileCount;
  }

  /** The message type named by a type URL or full name, or null. */
  lookup(typeUrl: string): protobuf.Type | null {
    const name = typeName(typeUrl);
    let t = this.#types.get(name);
    if (t === undefined) {
      let found: protobuf.ReflectionObject | null = null;
      try {
        found = name === "" ? null : this.root.lookup(name);
      } catch {
        found = null;
      }
      t = found instanceof protobuf.Type ? found : null;
      this.#types.set(name, t);
    }
    return t;
  }

  /** Like {@link lookup}, but throws when the type is not loaded. */
  type(name: string): protobuf.Type {
    const t = this.lookup(name);
    if (!t) throw new Error(`xds protos: type ${name} is not loaded`);
    return t;
  }

  has(typeUrl: string): boolean {
    return this.lookup(typeUrl) !== null;
  }

  decodeAny(typeUrl: string, bytes: Uint8Array): Json {
    const where = `resource of type ${typeName(typeUrl) || JSON.stringify(typeUrl)}`;
    const t = this.lookup(typeUrl);
    if (!t) throw new Error(`${where}: type is not loaded`);
    try {
      const out = this.messageToJson(t, this.decodeMessage(t, bytes, ""), "", false);
      if (!isPlainObject(out)) return { value: out };
      return out;
    } catch (e) {
      throw new Error(`${where}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  encodeAny(typeUrl: string, json: Json): Uint8Array {
    const where = `resource of type ${typeName(typeUrl) || JSON.stringify(typeUrl)}`;
    const t = this.lookup(typeUrl);
    if (!t) throw new Error(`${where}: type is not loaded`);
    try {
      const body = isPlainObject(json) && "@type" in json ? withoutType(json) : json;
      return plain(t.encode(this.messageFromJson(t, body, "")).finish());
    } catch (e) {
      throw new Error(`${where}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** protobufjs decode with a one-line error that names the field path. */
  decodeMessage(t: protobuf.Type, bytes: Uint8Array, path: string): PbMessage {
    try {
      return t.decode(bytes) as unknown as PbMessage;
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      throw new PathError(path || "(root)", `malformed ${fullName(t)} bytes: ${msg}`);
    }
  }

  // ---- decode: protobufjs message → Envoy JSON ----

  /** A message as JSON; `rawAny` keeps an `Any` as `{type_url, value}` (the discovery messages' resources). */
  messageToJson(t: protobuf.Type, m: PbMessage, path: string, rawAny: boolean): unknown {
    const name = fullName(t);
    if (name === "google.protobuf.Any") return rawAny ? rawAnyOf(m) : this.anyToJson(m, path);
    if (name === "google.protobuf.Duration") return durationToJson(m.seconds, Number(m.nanos ?? 0));
    if (name === "google.protobuf.Timestamp") return timestampToJson(m.seconds, Number(m.nanos ?? 0));
    if (name === "google.protobuf.FieldMask") return fieldMaskToJson((m.paths as string[] | undefined) ?? []);
    if (name === "google.protobuf.Struct") return this.structToJson(m, path);
    if (name === "google.protobuf.Value") return this.valueToJson(m, path);
    if (name === "google.protobuf.ListValue") return this.listToJson(m, path);
    if (WRAPPERS.has(name)) {
      const f = t.fieldsById[1]!;
      return this.scalarToJson(f, m[f.name] ?? f.typeDefault);
    }
    const out: Json = {};
    for (const f of t.fieldsArray) {
      if (!Object.hasOwn(m, f.name)) continue;
      const v = m[f.name];
      if (v === null || v === undefined) continue;
      const p = join(path, f.name);
      if (f instanceof protobuf.MapField || f.map) {
        const entries = Object.entries(v as Json);
        if (entries.length === 0) continue;
        const obj: Json = {};
        for (const [k, ev] of entries) obj[k] = this.fieldValueToJson(f, ev, join(p, k), false);
        out[f.name] = obj;
      } else if (f.repeated) {
        const arr = v as unknown[];
        if (arr.length === 0) continue;
        out[f.name] = arr.map((ev, i) => this.fieldValueToJson(f, ev, join(p, i), rawAny));
      } else {
        if (!f.partOf && !(f.resolvedType instanceof protobuf.Type) && isDefaultScalar(f, v)) continue;
        out[f.name] = this.fieldValueToJson(f, v, p, rawAny);
      }
    }
    return out;
  }

  fieldValueToJson(f: protobuf.Field, v: unknown, path: string, rawAny: boolean): unknown {
    const rt = f.resolvedType;
    if (rt instanceof protobuf.Type) return this.messageToJson(rt, v as PbMessage, path, rawAny);
    if (rt instanceof protobuf.Enum) {
      const n = Number(v);
      return rt.valuesById[n] ?? n;
    }
    return this.scalarToJson(f, v);
  }

  scalarToJson(f: protobuf.Field, v: unknown): unknown {
    if (LONG_TYPES.has(f.type)) return int64ToJson(v);
    if (f.type === "bytes") return bytesToBase64(v as Uint8Array);
    if ((f.type === "double" || f.type === "float") && typeof v === "number" && !Number.isFinite(v)) {
      return String(v);
    }
    return v;
  }

  structToJson(m: PbMessage, path: string): Json {
    const out: Json = {};
    for (const [k, v] of Object.entries((m.fields as Record<string, PbMessage> | undefined) ?? {})) {
      out[k] = this.valueToJson(v, join(path, k));
    }
    return out;
  }

  listToJson(m: PbMessage, path: string): unknown[] {
    return ((m.values as PbMessage[] | undefined) ?? []).map((v, i) => this.valueToJson(v, join(path, i)));
  }

  valueToJson(m: PbMessage, path: string): unknown {
    if (Object.hasOwn(m, "numberValue") && m.numberValue != null) return m.numberValue;
    if (Object.hasOwn(m, "stringValue") && m.stringValue != null) return m.stringValue;
    if (Object.hasOwn(m, "boolValue") && m.boolValue != null) return m.boolValue;
    if (Object.hasOwn(m, "structValue") && m.structValue != null) {
      return this.structToJson(m.structValue as PbMessage, path);
    }
    if (Object.hasOwn(m, "listValue") && m.listValue != null) return this.listToJson(m.listValue as PbMessage, path);
    return null;
  }

  anyToJson(m: PbMessage, path: string): Json {
    const url = String(m.type_url ?? "");
    const value = (m.value as Uint8Array | undefined) ?? new Uint8Array();
    const t = this.lookup(url);
    if (!t) {
      const out: Json = { "@type": url, value: bytesToBase64(value) };
      Object.defineProperty(out, OPAQUE_ANY, { value, enumerable: false });
      return out;
    }
    const name = fullName(t);
    const inner = this.messageToJson(t, this.decodeMessage(t, value, path), path, false);
    if (TYPED_STRUCTS.has(name)) return this.unwrapTypedStruct(inner as Json, path);
    if (SPECIAL_JSON.has(name)) return { "@type": url, value: inner };
    return { "@type": url, ...(inner as Json) };
  }

  /** `{type_url, value: {...}}` → `{"@type": type_url, ...value}`, normalized through the type when loaded. */
  unwrapTypedStruct(ts: Json, path: string): Json {
    const url = typeof ts.type_url === "string" ? ts.type_url : "";
    const value = isPlainObject(ts.value) ? ts.value : {};
    const t = url === "" ? null : this.lookup(url);
    if (!t || SPECIAL_JSON.has(fullName(t))) return { "@type": url, ...value };
    const bytes = t.encode(this.messageFromJson(t, value, path)).finish();
    return { "@type": url, ...(this.messageToJson(t, this.decodeMessage(t, bytes, path), path, false) as Json) };
  }

  // ---- encode: Envoy JSON → protobufjs plain object ----

  /** The fields of a type by `.proto` name and by lowerCamelCase name. */
  fieldsByKey(t: protobuf.Type): Map<string, protobuf.Field> {
    let keys = this.#keys.get(t);
    if (!keys) {
      keys = new Map();
      for (const f of t.fieldsArray) {
        keys.set(f.name, f);
        keys.set(camel(f.name), f);
        const jsonName = f.options?.json_name;
        if (typeof jsonName === "string") keys.set(jsonName, f);
      }
      this.#keys.set(t, keys);
    }
    return keys;
  }

  messageFromJson(t: protobuf.Type, json: unknown, path: string): PbMessage {
    const name = fullName(t);
    if (name === "google.protobuf.Any") return this.anyFromJson(json, path);
    if (name === "google.protobuf.Duration" || name === "google.protobuf.Timestamp") {
      if (isPlainObject(json) && ("seconds" in json || "nanos" in json)) return this.plainFromJson(t, json, path);
      const r = name === "google.protobuf.Duration" ? durationFromJson(json) : timestampFromJson(json);
      if (typeof r === "string") throw new PathError(path || "(root)", r);
      return r;
    }
    if (name === "google.protobuf.FieldMask") {
      const r = fieldMaskFromJson(json);
      if (typeof r === "string") throw new PathError(path || "(root)", r);
      return { paths: r };
    }
    if (name === "google.protobuf.Struct") return this.structFromJson(json, path);
    if (name === "google.protobuf.Value") return this.valueFromJson(json, path);
    if (name === "google.protobuf.ListValue") return this.listFromJson(json, path);
    if (WRAPPERS.has(name)) {
      const f = t.fieldsById[1]!;
      return { [f.name]: this.scalarFromJson(f, json, path) };
    }
    return this.plainFromJson(t, json, path);
  }

  plainFromJson(t: protobuf.Type, json: unknown, path: string): PbMessage {
    if (!isPlainObject(json)) {
      throw new PathError(path || "(root)", `expected an object (${fullName(t)}), got ${describe(json)}`);
    }
    const keys = this.fieldsByKey(t);
    const out: PbMessage = {};
    const oneofSet = new Map<string, string>();
    for (const [key, v] of Object.entries(json)) {
      const f = keys.get(key);
      const p = join(path, key);
      if (!f) throw new PathError(p, `unknown field of ${fullName(t)}`);
      if (v === null && fullName(f.resolvedType ?? t) !== "google.protobuf.Value") continue;
      if (f.partOf && !f.partOf.name.startsWith("_")) {
        const other = oneofSet.get(f.partOf.name);
        if (other !== undefined && other !== f.name) {
          throw new PathError(p, `only one of ${other} and ${f.name} may be set (oneof ${f.partOf.name})`);
        }
        oneofSet.set(f.partOf.name, f.name);
      }
      if (Object.hasOwn(out, f.name)) throw new PathError(p, `field ${f.name} is given twice`);
      if (f instanceof protobuf.MapField || f.map) {
        if (!isPlainObject(v)) throw new PathError(p, `expected an object (map), got ${describe(v)}`);
        const m: Record<string, unknown> = {};
        for (const [k, ev] of Object.entries(v)) m[k] = this.fieldValueFromJson(f, ev, join(p, k));
        out[f.name] = m;
      } else if (f.repeated) {
        if (!Array.isArray(v)) throw new PathError(p, `expected an array, got ${describe(v)}`);
        out[f.name] = v.map((ev, i) => this.fieldValueFromJson(f, ev, join(p, i)));
      } else {
        out[f.name] = this.fieldValueFromJson(f, v, p);
      }
    }
    return out;
  }

  fieldValueFromJson(f: protobuf.Field, v: unknown, path: string): unknown {
    const rt = f.resolvedType;
    if (rt instanceof protobuf.Type) return this.messageFromJson(rt, v, path);
    if (rt instanceof protobuf.Enum) {
      if (typeof v === "string" && v in rt.values) return rt.values[v];
      if (typeof v === "number" && Number.isInteger(v)) return v;
      throw new PathError(path, `expected a ${fullName(rt)} name, got ${describe(v)}`);
    }
    return this.scalarFromJson(f, v, path);
  }

  scalarFromJson(f: protobuf.Field, v: unknown, path: string): unknown {
    const type = f.type;
    if (type === "string") {
      if (typeof v !== "string") throw new PathError(path, `expected a string, got ${describe(v)}`);
      return v;
    }
    if (type === "bool") {
      if (typeof v !== "boolean") throw new PathError(path, `expected true or false, got ${describe(v)}`);
      return v;
    }
    if (type === "bytes") {
      const b = typeof v === "string" ? base64ToBytes(v) : v instanceof Uint8Array ? v : undefined;
      if (!b) throw new PathError(path, `expected base64 bytes, got ${describe(v)}`);
      return b;
    }
    if (type === "double" || type === "float") {
      if (typeof v === "number") return v;
      if (v === "NaN" || v === "Infinity" || v === "-Infinity") return Number(v);
      if (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))) return Number(v);
      throw new PathError(path, `expected a number, got ${describe(v)}`);
    }
    if (LONG_TYPES.has(type)) {
      const text = typeof v === "number" && Number.isInteger(v) ? String(v) : typeof v === "string" ? v : "";
      if (!/^-?\d+$/.test(text)) throw new PathError(path, `expected an integer, got ${describe(v)}`);
      const unsigned = type === "uint64" || type === "fixed64";
      const n = BigInt(text);
      if (unsigned ? n < 0n || n > 0xffff_ffff_ffff_ffffn : n < -(2n ** 63n) || n >= 2n ** 63n) {
        throw new PathError(path, `integer ${text} is out of range for ${type}`);
      }
      const Long = protobuf.util.Long as unknown as { fromString(s: string, unsigned: boolean): unknown } | undefined;
      return Long ? Long.fromString(text, unsigned) : text;
    }
    const n = typeof v === "number" ? v : typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n)) throw new PathError(path, `expected an integer, got ${describe(v)}`);
    if (INT32_TYPES.has(type) && (n < -0x8000_0000 || n > 0x7fff_ffff)) {
      throw new PathError(path, `integer ${n} is out of range for ${type}`);
    }
    if (UINT32_TYPES.has(type) && (n < 0 || n > 0xffff_ffff)) {
      throw new PathError(path, `integer ${n} is out of range for ${type}`);
    }
    return n;
  }

  structFromJson(json: unknown, path: string): PbMessage {
    if (!isPlainObject(json)) {
      throw new PathError(path || "(root)", `expected an object (Struct), got ${describe(json)}`);
    }
    const fields: Record<string, PbMessage> = {};
    for (const [k, v] of Object.entries(json)) fields[k] = this.valueFromJson(v, join(path, k));
    return { fields };
  }

  listFromJson(json: unknown, path: string): PbMessage {
    if (!Array.isArray(json)) {
      throw new PathError(path || "(root)", `expected an array (ListValue), got ${describe(json)}`);
    }
    return { values: json.map((v, i) => this.valueFromJson(v, join(path, i))) };
  }

  valueFromJson(v: unknown, path: string): PbMessage {
    if (v === null || v === undefined) return { nullValue: 0 };
    if (typeof v === "number") return { numberValue: v };
    if (typeof v === "string") return { stringValue: v };
    if (typeof v === "boolean") return { boolValue: v };
    if (Array.isArray(v)) return { listValue: this.listFromJson(v, path) };
    if (isPlainObject(v)) return { structValue: this.structFromJson(v, path) };
    throw new PathError(path || "(root)", `expected a JSON value, got ${describe(v)}`);
  }

  anyFromJson(json: unknown, path: string): PbMessage {
    if (!isPlainObject(json)) {
      throw new PathError(path || "(root)", `expected an object with "@type", got ${describe(json)}`);
    }
    const raw = opaqueAnyBytes(json);
    const url = json["@type"];
    if (typeof url !== "string" || url === "") {
      if ("type_url" in json && "value" in json && json.value instanceof Uint8Array) {
        return { type_url: String(json.type_url), value: json.value };
      }
      throw new PathError(join(path, "@type"), `expected the type URL of the Any, got ${describe(url)}`);
    }
    if (raw) return { type_url: url, value: raw };
    const body = withoutType(json);
    const t = this.lookup(url);
    if (!t) {
      const keys = Object.keys(body);
      if (keys.length === 1 && keys[0] === "value" && typeof body.value === "string") {
        const b = base64ToBytes(body.value);
        if (b) return { type_url: url, value: b };
      }
      const ts = this.type("xds.type.v3.TypedStruct");
      const value = plain(ts.encode({ type_url: url, value: this.structFromJson(body, path) }).finish());
      return { type_url: TYPED_STRUCT, value };
    }
    const name = fullName(t);
    const msg = SPECIAL_JSON.has(name)
      ? this.messageFromJson(t, body.value, join(path, "value"))
      : this.messageFromJson(t, body, path);
    return { type_url: url, value: plain(t.encode(msg).finish()) };
  }
}

/** protobufjs writes node Buffers under Deno; hand out plain Uint8Array views of the same memory. */
function plain(b: Uint8Array): Uint8Array {
  return b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function withoutType(json: Json): Json {
  const { "@type": _, ...rest } = json;
  return rest;
}

function rawAnyOf(m: PbMessage): WireAny {
  return { type_url: String(m.type_url ?? ""), value: (m.value as Uint8Array | undefined) ?? new Uint8Array() };
}

function isDefaultScalar(f: protobuf.Field, v: unknown): boolean {
  if (f.resolvedType instanceof protobuf.Enum) return Number(v) === 0;
  if (typeof v === "string") return v === "";
  if (typeof v === "boolean") return !v;
  if (typeof v === "number") return v === 0 && !Object.is(v, -0);
  if (v instanceof Uint8Array) return v.length === 0;
  if (isLong(v)) return v.low === 0 && v.high === 0;
  return false;
}

/**
 * Decodes one resource (the bytes of an `Any` of `typeUrl`) into Envoy JSON; see the module doc for the mapping.
 * Throws a one-line `Error` (`resource of type envoy.config.listener.v3.Listener: <path>: ...`) for malformed bytes
 * or a type that is not loaded.
 */
export function decodeAny(typeUrl: string, bytes: Uint8Array): Json {
  return xdsTypes().decodeAny(typeUrl, bytes);
}

/**
 * Encodes Envoy JSON (snake_case or lowerCamelCase keys; a top-level `"@type"` is ignored) as the protobuf bytes of
 * `typeUrl`. Throws a one-line `Error` naming the field path for unknown fields and wrongly typed values.
 */
export function encodeAny(typeUrl: string, json: Json): Uint8Array {
  return xdsTypes().encodeAny(typeUrl, json);
}

/** Encodes Envoy JSON that names its type in `"@type"` as a `google.protobuf.Any` (`{type_url, value}`). */
export function toAny(json: Json): WireAny {
  const url = json["@type"];
  if (typeof url !== "string" || url === "") throw new Error(`resource: "@type" is required, got ${describe(url)}`);
  return { type_url: url, value: encodeAny(url, json) };
}

/** Decodes a `google.protobuf.Any` into Envoy JSON with its `"@type"`. */
export function fromAny(any: WireAny): Json {
  return { "@type": any.type_url, ...decodeAny(any.type_url, any.value) };
}

// ---- discovery messages ----

const DISCOVERY = "envoy.service.discovery.v3.";

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.map(String) : [];
}

function decodeDiscovery(name: string, bytes: Uint8Array): Json {
  const types = xdsTypes() as Types;
  const t = types.type(DISCOVERY + name);
  try {
    return types.messageToJson(t, types.decodeMessage(t, bytes, ""), "", true) as Json;
  } catch (e) {
    throw new Error(`${name}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function encodeDiscovery(name: string, obj: PbMessage): Uint8Array {
  const types = xdsTypes() as Types;
  const t = types.type(DISCOVERY + name);
  return plain(t.encode(obj).finish());
}

function nodeToPb(node: Record<string, unknown> | undefined): PbMessage | undefined {
  if (node === undefined) return undefined;
  const types = xdsTypes() as Types;
  try {
    return types.messageFromJson(types.type("envoy.config.core.v3.Node"), node, "node");
  } catch (e) {
    throw new Error(`discovery request: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function statusOf(v: unknown): WireStatus | undefined {
  if (!isPlainObject(v)) return undefined;
  return { code: typeof v.code === "number" ? v.code : 0, message: str(v.message) };
}

function setIf<T extends object, K extends string, V>(o: T, k: K, v: V | undefined): T {
  if (v !== undefined) (o as Record<string, unknown>)[k] = v;
  return o;
}

/** The fields both request kinds share, as protobufjs takes them: `node`, `response_nonce`, `error_detail`. */
function requestCommonToPb(m: DiscoveryRequest | DeltaDiscoveryRequest): PbMessage {
  return {
    node: nodeToPb(m.node),
    response_nonce: m.response_nonce ?? "",
    error_detail: m.error_detail ? { code: m.error_detail.code, message: m.error_detail.message } : undefined,
  };
}

/** Adds the optional fields both decoded request kinds share (`node`, `error_detail`), when set. */
function withRequestOptionals<T extends object>(out: T, j: Json): T {
  setIf(out, "node", isPlainObject(j.node) ? j.node : undefined);
  return setIf(out, "error_detail", statusOf(j.error_detail));
}

/** Encodes a `DiscoveryRequest` (SotW). */
export function encodeDiscoveryRequest(m: DiscoveryRequest): Uint8Array {
  return encodeDiscovery("DiscoveryRequest", {
    version_info: m.version_info ?? "",
    resource_names: [...(m.resource_names ?? [])],
    type_url: m.type_url,
    ...requestCommonToPb(m),
  });
}

/** Decodes a `DiscoveryRequest`; `node` and `error_detail` are present only when set. */
export function decodeDiscoveryRequest(b: Uint8Array): DiscoveryRequest {
  const j = decodeDiscovery("DiscoveryRequest", b);
  const out = {
    version_info: str(j.version_info),
    resource_names: strings(j.resource_names),
    type_url: str(j.type_url),
    response_nonce: str(j.response_nonce),
  };
  return withRequestOptionals(out, j);
}

/** Encodes a `DiscoveryResponse` (SotW); resources are sent as given. */
export function encodeDiscoveryResponse(m: DiscoveryResponse): Uint8Array {
  return encodeDiscovery("DiscoveryResponse", {
    version_info: m.version_info,
    resources: m.resources.map((r) => ({ type_url: r.type_url, value: r.value })),
    type_url: m.type_url,
    nonce: m.nonce,
  });
}

/** Decodes a `DiscoveryResponse`; its resources stay undecoded `{type_url, value}`. */
export function decodeDiscoveryResponse(b: Uint8Array): DiscoveryResponse {
  const j = decodeDiscovery("DiscoveryResponse", b);
  return {
    version_info: str(j.version_info),
    resources: (j.resources as WireAny[] | undefined) ?? [],
    type_url: str(j.type_url),
    nonce: str(j.nonce),
  };
}

/** Encodes a `DeltaDiscoveryRequest`. */
export function encodeDeltaDiscoveryRequest(m: DeltaDiscoveryRequest): Uint8Array {
  return encodeDiscovery("DeltaDiscoveryRequest", {
    type_url: m.type_url,
    resource_names_subscribe: [...(m.resource_names_subscribe ?? [])],
    resource_names_unsubscribe: [...(m.resource_names_unsubscribe ?? [])],
    initial_resource_versions: { ...(m.initial_resource_versions ?? {}) },
    ...requestCommonToPb(m),
  });
}

/** Decodes a `DeltaDiscoveryRequest`; `node` and `error_detail` are present only when set. */
export function decodeDeltaDiscoveryRequest(b: Uint8Array): DeltaDiscoveryRequest {
  const j = decodeDiscovery("DeltaDiscoveryRequest", b);
  const out = {
    type_url: str(j.type_url),
    resource_names_subscribe: strings(j.resource_names_subscribe),
    resource_names_unsubscribe: strings(j.resource_names_unsubscribe),
    initial_resource_versions:
      (isPlainObject(j.initial_resource_versions) ? j.initial_resource_versions : {}) as Record<
        string,
        string
      >,
    response_nonce: str(j.response_nonce),
  };
  return withRequestOptionals(out, j);
}

/** Encodes a `DeltaDiscoveryResponse`; resources are sent as given (`resource` omitted when undefined). */
export function encodeDeltaDiscoveryResponse(m: DeltaDiscoveryResponse): Uint8Array {
  return encodeDiscovery("DeltaDiscoveryResponse", {
    system_version_info: m.system_version_info,
    resources: m.resources.map((r) => ({
      name: r.name,
      version: r.version,
      resource: r.resource ? { type_url: r.resource.type_url, value: r.resource.value } : undefined,
    })),
    type_url: m.type_url,
    removed_resources: [...m.removed_resources],
    nonce: m.nonce,
  });
}

/** Decodes a `DeltaDiscoveryResponse`; each resource's `Any` stays undecoded. */
export function decodeDeltaDiscoveryResponse(b: Uint8Array): DeltaDiscoveryResponse {
  const j = decodeDiscovery("DeltaDiscoveryResponse", b);
  const resources = ((j.resources as Json[] | undefined) ?? []).map((r): WireResource => ({
    name: str(r.name),
    version: str(r.version),
    resource: isPlainObject(r.resource) ? (r.resource as unknown as WireAny) : undefined,
  }));
  return {
    system_version_info: str(j.system_version_info),
    resources,
    type_url: str(j.type_url),
    removed_resources: strings(j.removed_resources),
    nonce: str(j.nonce),
  };
}

/** A gRPC message codec in the shape `@grpc/grpc-js` takes (`requestSerialize`, `responseDeserialize`, ...). */
export interface GrpcCodec<T> {
  serialize(value: T): Buffer;
  deserialize(bytes: Buffer): T;
}

function codec<T>(enc: (m: T) => Uint8Array, dec: (b: Uint8Array) => T): GrpcCodec<T> {
  return {
    serialize: (m) => {
      const b = enc(m);
      return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    },
    deserialize: (b) => dec(new Uint8Array(b.buffer, b.byteOffset, b.byteLength)),
  };
}

/** gRPC codecs of the four discovery messages. */
export const DISCOVERY_CODECS: {
  readonly request: GrpcCodec<DiscoveryRequest>;
  readonly response: GrpcCodec<DiscoveryResponse>;
  readonly deltaRequest: GrpcCodec<DeltaDiscoveryRequest>;
  readonly deltaResponse: GrpcCodec<DeltaDiscoveryResponse>;
} = {
  request: codec(encodeDiscoveryRequest, decodeDiscoveryRequest),
  response: codec(encodeDiscoveryResponse, decodeDiscoveryResponse),
  deltaRequest: codec(encodeDeltaDiscoveryRequest, decodeDeltaDiscoveryRequest),
  deltaResponse: codec(encodeDeltaDiscoveryResponse, decodeDeltaDiscoveryResponse),
};

/** One bidi-streaming method of a grpc-js `ServiceDefinition`. */
export interface StreamMethodDefinition<Req, Res> {
  readonly path: string;
  readonly requestStream: true;
  readonly responseStream: true;
  readonly requestSerialize: (m: Req) => Buffer;
  readonly requestDeserialize: (b: Buffer) => Req;
  readonly responseSerialize: (m: Res) => Buffer;
  readonly responseDeserialize: (b: Buffer) => Res;
  readonly originalName: string;
}

function streamMethod<Req, Res>(
  path: string,
  req: GrpcCodec<Req>,
  res: GrpcCodec<Res>,
  originalName: string,
): StreamMethodDefinition<Req, Res> {
  return {
    path,
    requestStream: true,
    responseStream: true,
    requestSerialize: req.serialize,
    requestDeserialize: req.deserialize,
    responseSerialize: res.serialize,
    responseDeserialize: res.deserialize,
    originalName,
  };
}

/**
 * `envoy.service.discovery.v3.AggregatedDiscoveryService` as a grpc-js `ServiceDefinition` (pass it to
 * `server.addService` or `grpc.makeGenericClientConstructor`).
 */
export const ADS_SERVICE: {
  readonly StreamAggregatedResources: StreamMethodDefinition<DiscoveryRequest, DiscoveryResponse>;
  readonly DeltaAggregatedResources: StreamMethodDefinition<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
} = {
  StreamAggregatedResources: streamMethod(
    ADS_METHODS.sotw,
    DISCOVERY_CODECS.request,
    DISCOVERY_CODECS.response,
    "streamAggregatedResources",
  ),
  DeltaAggregatedResources: streamMethod(
    ADS_METHODS.delta,
    DISCOVERY_CODECS.deltaRequest,
    DISCOVERY_CODECS.deltaResponse,
    "deltaAggregatedResources",
  ),
};

/** The {@link XdsWire} the ADS client uses, built on this module. */
export function createXdsWire(): XdsWire {
  return {
    encodeRequest: encodeDiscoveryRequest,
    decodeResponse: decodeDiscoveryResponse,
    encodeDeltaRequest: encodeDeltaDiscoveryRequest,
    decodeDeltaResponse: decodeDeltaDiscoveryResponse,
    decodeResource: decodeAny,
  };
}
