/**
 * Envoy's static secrets: `static_resources.secrets` (`tls_certificate` and `validation_context` secrets) and the
 * references to them in a `CommonTlsContext` — `tls_certificate_sds_secret_configs`,
 * `validation_context_sds_secret_config` and `combined_validation_context` — each `{name}` without `sds_config`.
 *
 * Envoy resolves a static secret when the transport socket is built; Ferry does the same one step earlier, on the
 * raw config: {@link resolveSecretRefs} returns a copy of the listeners or clusters in which every reference is
 * replaced by the secret's content (`tls_certificates` entries, `validation_context`), so the TLS providers read one
 * shape. A `combined_validation_context` is merged as Envoy does (`MergeFrom`: the secret's singular fields win,
 * repeated fields are concatenated). Unknown names, secrets of the wrong kind and `sds_config` (dynamic SDS, which
 * comes with xDS) are errors naming the reference's path.
 *
 * @module
 */
import { ConfigError } from "../api/errors.ts";
import { asList, camel, describe, joinPath, ObjReader } from "./reader.ts";

/** A static secret's content, by kind. */
export interface StaticSecret {
  readonly kind: "tls_certificate" | "validation_context";
  readonly value: Record<string, unknown>;
  /** Where it was defined, for messages. */
  readonly path: string;
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);

/** Takes `key` (either spelling) out of `o`; returns its value and the spelling used. */
function take(o: Obj, key: string): [unknown, string] {
  for (const k of [key, camel(key)]) {
    if (k in o) {
      const v = o[k];
      delete o[k];
      return [v, k];
    }
  }
  return [undefined, key];
}

/** Parses `secrets` of the `static_resources` reader `sr` into a map by name. */
export function parseStaticSecrets(sr: ObjReader): Map<string, StaticSecret> {
  const out = new Map<string, StaticSecret>();
  sr.objs("secrets", (s) => {
    const name = s.str("name", { required: true })!;
    if (out.has(name)) {
      throw new ConfigError(s.at("name"), `secret ${describe(name)} is already defined at ${out.get(name)!.path}`);
    }
    const kind = s.oneOf(["tls_certificate", "validation_context", "session_ticket_keys", "generic_secret"], {
      required: true,
    })!;
    if (kind === "session_ticket_keys" || kind === "generic_secret") {
      throw new ConfigError(s.at(kind), "is not supported (tls_certificate and validation_context secrets are)");
    }
    const value = s.value(kind);
    if (!isObj(value)) throw new ConfigError(s.at(kind), `expected an object, got ${describe(value)}`);
    out.set(name, { kind, value, path: s.path });
  });
  return out;
}

/** The secret a `{name}` reference at `path` names, checked for its kind. */
function lookup(
  ref: unknown,
  path: string,
  secrets: Map<string, StaticSecret>,
  kind: StaticSecret["kind"],
): Obj {
  const r = new ObjReader(ref, path);
  const name = r.str("name", { required: true })!;
  r.unsupported(
    "sds_config",
    "is not supported: secrets come from static_resources.secrets (dynamic SDS comes with xDS)",
  );
  r.done();
  const s = secrets.get(name);
  if (s === undefined) {
    throw new ConfigError(r.at("name"), `no secret named ${describe(name)} in static_resources.secrets`);
  }
  if (s.kind !== kind) {
    throw new ConfigError(r.at("name"), `secret ${describe(name)} (${s.path}) is a ${s.kind}, not a ${kind}`);
  }
  return structuredClone(s.value);
}

/** Envoy's `MergeFrom` of `over` into a copy of `base`: singular fields of `over` win, lists concatenate. */
function mergeFrom(base: Obj, over: Obj): Obj {
  const out: Obj = structuredClone(base);
  for (const [k, v] of Object.entries(over)) {
    const key = k in out ? k : camel(k) in out ? camel(k) : k;
    const cur = out[key];
    // A list on either side is a repeated field; the other side may be written as a single value.
    if (cur !== undefined && cur !== null && (Array.isArray(cur) || Array.isArray(v))) {
      out[key] = [...asList(cur), ...asList(structuredClone(v))];
    } else if (isObj(cur) && isObj(v)) out[key] = mergeFrom(cur, v);
    else out[key] = structuredClone(v);
  }
  return out;
}

/** Rewrites one `CommonTlsContext` (a copy) at `path`. */
function resolveCommon(ctx: Obj, path: string, secrets: Map<string, StaticSecret>): Obj {
  const c: Obj = { ...ctx };
  const [refs, refsKey] = take(c, "tls_certificate_sds_secret_configs");
  if (refs !== undefined && refs !== null) {
    // Either list may be written as a single object (protobuf's JSON leniency, see reader.ts).
    const [own, ownKey] = take(c, "tls_certificates");
    const certs = own === undefined || own === null ? [] : [...asList(own)];
    asList(refs).forEach((ref, i) => {
      certs.push(lookup(ref, joinPath(joinPath(path, refsKey), i), secrets, "tls_certificate"));
    });
    c[ownKey] = certs;
  }
  const [vref, vrefKey] = take(c, "validation_context_sds_secret_config");
  if (vref !== undefined) {
    if (c["validation_context"] !== undefined || c["validationContext"] !== undefined) {
      throw new ConfigError(path, `only one of validation_context, ${vrefKey} may be set`);
    }
    c["validation_context"] = lookup(vref, joinPath(path, vrefKey), secrets, "validation_context");
  }
  const [combined, combinedKey] = take(c, "combined_validation_context");
  if (combined !== undefined) {
    const cpath = joinPath(path, combinedKey);
    if (c["validation_context"] !== undefined || c["validationContext"] !== undefined) {
      throw new ConfigError(path, `only one of validation_context, ${vrefKey}, ${combinedKey} may be set`);
    }
    const r = new ObjReader(combined, cpath);
    const def = r.value("default_validation_context", { required: true });
    if (!isObj(def)) {
      throw new ConfigError(r.at("default_validation_context"), `expected an object, got ${describe(def)}`);
    }
    const ref = r.value("validation_context_sds_secret_config", { required: true });
    r.done();
    const secret = lookup(ref, r.at("validation_context_sds_secret_config"), secrets, "validation_context");
    c["validation_context"] = mergeFrom(def, secret);
  }
  return c;
}

/**
 * A copy of `raw` (listeners or clusters, any depth) with every `common_tls_context` secret reference replaced by
 * the secret's content. `raw` itself is not changed.
 */
export function resolveSecretRefs(raw: unknown, path: string, secrets: Map<string, StaticSecret>): unknown {
  if (Array.isArray(raw)) return raw.map((v, i) => resolveSecretRefs(v, joinPath(path, i), secrets));
  if (!isObj(raw)) return raw;
  const out: Obj = {};
  for (const [k, v] of Object.entries(raw)) {
    const p = joinPath(path, k);
    out[k] = (k === "common_tls_context" || k === "commonTlsContext") && isObj(v)
      ? resolveCommon(resolveSecretRefs(v, p, secrets) as Obj, p, secrets)
      : resolveSecretRefs(v, p, secrets);
  }
  return out;
}
