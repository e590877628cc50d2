/**
 * Envoy's static secrets: `static_resources.secrets` (`tls_certificate` and `validation_context` secrets) and the
 * references to them in a `CommonTlsContext` — `tls_certificate_sds_secret_configs`,
 * `validation_context_sds_secret_config` and `combined_validation_context` — each `{name}` without `sds_config`.
 *
 * The secrets themselves live in a {@link SecretManager} (`lib/tls/secret_manager.ts`), the provider that also
 * takes runtime updates: {@link loadStaticSecrets} fills one from `static_resources.secrets`.
 * {@link resolveSecretRefs} returns a copy of the listeners or clusters in which every reference is replaced by
 * the secret's current content (`tls_certificates` entries, `validation_context`; in a Ferry `GmTlsContext`, its
 * `*_sds_secret_config` fields by the pair or trusted CA they name), so the TLS providers read one shape, and tags
 * each rewritten context with a {@link SecretBinding} (see {@link secretBindingOf}): the transport socket
 * subscribes through it, and rebuilds its context from {@link resolveWith} when one of the secrets changes. A
 * `combined_validation_context` is merged as Envoy does (`MergeFrom`: the secret's singular fields win, repeated
 * fields are concatenated). Unknown names, secrets of the wrong kind and `sds_config` (dynamic SDS, which
 * comes with xDS) are errors naming the reference's path.
 *
 * @module
 */
import { ConfigError } from "../api/errors.ts";
import { GM_TLS_CONTEXT_TYPE, GM_TLS_CONTEXT_TYPE_FERRY } from "../tls/gm.ts";
import { parseSecret, type Secret, SecretManager } from "../tls/secret_manager.ts";
import { asList, camel, describe, joinPath, ObjReader } from "./reader.ts";

/** Where resolution reads secrets: a {@link SecretManager}, or a view of one with a candidate version swapped in. */
export interface SecretSource {
  get(name: string): Secret | undefined;
}

/**
 * What a `common_tls_context` that named secrets was resolved from: the manager, the names, and the context as
 * written (references unresolved) with its path, so it can be resolved again against a new version.
 */
export interface SecretBinding {
  /**
   * What was rewritten: an Envoy `common_tls_context`, or a whole Ferry `GmTlsContext` (its
   * `*_sds_secret_config` fields).
   */
  readonly kind: "common_tls_context" | "gm_tls_context";
  readonly manager: SecretManager;
  /** The secret names the context references, each once. */
  readonly names: readonly string[];
  /** The context as written (its nested contexts already resolved). */
  readonly unresolved: Readonly<Record<string, unknown>>;
  readonly path: string;
}

/** Non-enumerable, so the config reader's unknown-field check, JSON dumps and clones never see it. */
const BINDING: unique symbol = Symbol("ferry.secretBinding");

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

/**
 * Loads `secrets` of the `static_resources` reader `sr` into `manager` (a new one by default), each at version 1
 * with its path; a duplicate name is an error naming the second.
 */
export function loadStaticSecrets(sr: ObjReader, manager: SecretManager = new SecretManager()): SecretManager {
  sr.objs("secrets", (s) => manager.add({ ...parseSecret(s), path: s.path }));
  return manager;
}

/** The secret a `{name}` reference at `path` names, checked for its kind. Records the name in `used`. */
function lookup(
  ref: unknown,
  path: string,
  secrets: SecretSource,
  kind: Secret["kind"],
  used: Set<string>,
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
  used.add(name);
  return structuredClone(s.value) as Obj;
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

/** Rewrites one `CommonTlsContext` (a copy) at `path`; records the secret names it used in `used`. */
function resolveCommon(ctx: Obj, path: string, secrets: SecretSource, used: Set<string>): Obj {
  const c: Obj = { ...ctx };
  const [refs, refsKey] = take(c, "tls_certificate_sds_secret_configs");
  if (refs !== undefined && refs !== null) {
    // Either list may be written as a single object (protobuf's JSON leniency, see reader.ts).
    const [own, ownKey] = take(c, "tls_certificates");
    const certs = own === undefined || own === null ? [] : [...asList(own)];
    asList(refs).forEach((ref, i) => {
      certs.push(lookup(ref, joinPath(joinPath(path, refsKey), i), secrets, "tls_certificate", used));
    });
    c[ownKey] = certs;
  }
  const [vref, vrefKey] = take(c, "validation_context_sds_secret_config");
  if (vref !== undefined) {
    if (c["validation_context"] !== undefined || c["validationContext"] !== undefined) {
      throw new ConfigError(path, `only one of validation_context, ${vrefKey} may be set`);
    }
    c["validation_context"] = lookup(vref, joinPath(path, vrefKey), secrets, "validation_context", used);
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
    const secret = lookup(ref, r.at("validation_context_sds_secret_config"), secrets, "validation_context", used);
    c["validation_context"] = mergeFrom(def, secret);
  }
  return c;
}

/** The GmTlsContext fields that name a `tls_certificate` secret, and the field each one stands for. */
const GM_CERT_REFS: readonly (readonly [string, string])[] = [
  ["certificate_sds_secret_config", "certificate"],
  ["sign_certificate_sds_secret_config", "sign_certificate"],
  ["enc_certificate_sds_secret_config", "enc_certificate"],
];

const has = (o: Obj, key: string) => o[key] !== undefined || o[camel(key)] !== undefined;

/**
 * Rewrites one Ferry `GmTlsContext` (a copy) at `path`: `certificate_sds_secret_config`,
 * `sign_certificate_sds_secret_config` and `enc_certificate_sds_secret_config` name `tls_certificate` secrets (the
 * pair in place of `certificate`, ...); `validation_context_sds_secret_config` names a `validation_context` secret
 * whose `trusted_ca` becomes the context's.
 */
function resolveGm(tc: Obj, path: string, secrets: SecretSource, used: Set<string>): Obj {
  const c: Obj = { ...tc };
  for (const [ref, field] of GM_CERT_REFS) {
    const [r, rKey] = take(c, ref);
    if (r === undefined) continue;
    if (has(c, field)) throw new ConfigError(path, `only one of ${field}, ${rKey} may be set`);
    c[field] = lookup(r, joinPath(path, rKey), secrets, "tls_certificate", used);
  }
  const [v, vKey] = take(c, "validation_context_sds_secret_config");
  if (v !== undefined) {
    if (has(c, "trusted_ca")) throw new ConfigError(path, `only one of trusted_ca, ${vKey} may be set`);
    const vc = lookup(v, joinPath(path, vKey), secrets, "validation_context", used);
    const ca = vc["trusted_ca"] ?? vc["trustedCa"];
    if (ca === undefined) {
      throw new ConfigError(joinPath(path, vKey), "the secret has no trusted_ca (the gm provider needs one)");
    }
    c["trusted_ca"] = ca;
  }
  const [k, kKey] = take(c, "session_ticket_keys_sds_secret_config");
  if (k !== undefined) {
    if (has(c, "session_ticket_keys")) {
      throw new ConfigError(path, `only one of session_ticket_keys, ${kKey} may be set`);
    }
    c["session_ticket_keys"] = lookup(k, joinPath(path, kKey), secrets, "session_ticket_keys", used);
  }
  return c;
}

const GM_TYPES: ReadonlySet<unknown> = new Set([GM_TLS_CONTEXT_TYPE, GM_TLS_CONTEXT_TYPE_FERRY]);

/**
 * A copy of `raw` (listeners or clusters, any depth) with every `common_tls_context` secret reference replaced by
 * the secret's current content from `secrets`, each rewritten context tagged with its {@link SecretBinding}. `raw`
 * itself is not changed.
 */
export function resolveSecretRefs(raw: unknown, path: string, secrets: SecretManager): unknown {
  if (Array.isArray(raw)) return raw.map((v, i) => resolveSecretRefs(v, joinPath(path, i), secrets));
  if (!isObj(raw)) return raw;
  const out: Obj = {};
  if (GM_TYPES.has(raw["@type"])) {
    const unresolved = Object.fromEntries(
      Object.entries(raw).map(([k, v]) => [k, resolveSecretRefs(v, joinPath(path, k), secrets)]),
    );
    const used = new Set<string>();
    const c = resolveGm(unresolved, path, secrets, used);
    if (used.size > 0) {
      const binding: SecretBinding = { kind: "gm_tls_context", manager: secrets, names: [...used], unresolved, path };
      Object.defineProperty(c, BINDING, { value: binding, enumerable: false });
    }
    return c;
  }
  for (const [k, v] of Object.entries(raw)) {
    const p = joinPath(path, k);
    if ((k === "common_tls_context" || k === "commonTlsContext") && isObj(v)) {
      const unresolved = resolveSecretRefs(v, p, secrets) as Obj;
      const used = new Set<string>();
      const c = resolveCommon(unresolved, p, secrets, used);
      if (used.size > 0) {
        const binding: SecretBinding = {
          kind: "common_tls_context",
          manager: secrets,
          names: [...used],
          unresolved,
          path: p,
        };
        Object.defineProperty(c, BINDING, { value: binding, enumerable: false });
      }
      out[k] = c;
    } else out[k] = resolveSecretRefs(v, p, secrets);
  }
  return out;
}

/**
 * The {@link SecretBinding} of a `common_tls_context` or `GmTlsContext` that {@link resolveSecretRefs} rewrote, if it
 * named secrets.
 */
export function secretBindingOf(context: unknown): SecretBinding | undefined {
  return isObj(context) ? (context as { [BINDING]?: SecretBinding })[BINDING] : undefined;
}

/**
 * The bound context resolved again, with `next` in place of the current version of its secret (the other secrets
 * at their current versions). Throws what the first resolution would have thrown.
 */
export function resolveWith(binding: SecretBinding, next: Secret): Record<string, unknown> {
  const view: SecretSource = { get: (n) => n === next.name ? next : binding.manager.get(n) };
  const resolve = binding.kind === "gm_tls_context" ? resolveGm : resolveCommon;
  return resolve(binding.unresolved as Obj, binding.path, view, new Set());
}
