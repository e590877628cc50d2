/**
 * The secret provider (DESIGN §3): named, versioned TLS secrets — Envoy's `tls_certificate`,
 * `validation_context` and `session_ticket_keys` `Secret`s — that transport sockets read by name and follow as they change.
 *
 * Static secrets (`static_resources.secrets`) are loaded into a {@link SecretManager} at start-up; a runtime update
 * ({@link SecretManager.update}, `Server.updateSecret`, later SDS) replaces one. A TLS context that names a secret
 * subscribes to it: on an update every subscriber first rebuilds its context from the candidate with the same
 * parser the static config went through, and only when all of them accepted it is the secret installed and the
 * new contexts switched in — so a bad secret is one {@link ConfigError} naming its path and nothing changes. New
 * handshakes then use the new context; connections already open keep the one they were established with.
 *
 * @example
 * ```ts
 * import { SecretManager } from "./secret_manager.ts";
 * const secrets = new SecretManager();
 * secrets.add({ name: "ca", kind: "validation_context", value: { trusted_ca: { inline_string: "..." } } });
 * const off = secrets.subscribe("ca", (next) => () => console.log("now at version", next.version));
 * off();
 * ```
 *
 * @module
 */
import { ConfigError } from "../api/errors.ts";
import { describe, ObjReader } from "../config/reader.ts";
import { parseCertificates } from "../crypto/x509.ts";
import { errorText, readDataSource } from "./_common.ts";
import { readSessionTicketKeys } from "./_session_resumption.ts";

/** The kinds of secret Ferry serves (Envoy's `Secret.type` oneof, less generic secrets). */
export type SecretKind = "tls_certificate" | "validation_context" | "session_ticket_keys";

/**
 * One version of a named secret. Immutable: `value` (the Envoy `TlsCertificate` or `CertificateValidationContext`
 * in its JSON form) is frozen, and an update makes a new object with `version` one higher.
 */
export interface Secret {
  readonly name: string;
  readonly kind: SecretKind;
  readonly value: Readonly<Record<string, unknown>>;
  /** 1 for the secret as first added, +1 per accepted update. */
  readonly version: number;
  /** Where the secret was first defined (`static_resources.secrets[0]`), for messages. */
  readonly path: string;
}

/**
 * Called with a candidate version of a secret before it is installed. Throws (a {@link ConfigError}) to reject
 * it; otherwise returns what to run once every subscriber accepted it (or nothing). It must not change anything
 * visible before that commit function runs, since another subscriber may still reject the candidate.
 */
export type SecretSubscriber = (next: Secret) => (() => void) | void;

/** A secret as parsed from an Envoy `Secret` message, before it is versioned. */
export interface ParsedSecret {
  readonly name: string;
  readonly kind: SecretKind;
  readonly value: Record<string, unknown>;
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * Parses one Envoy v3 `Secret` (`{name, tls_certificate | validation_context | session_ticket_keys}`) at `o`'s path — the parser of
 * both `static_resources.secrets` entries and runtime updates. The secret's content is checked by the TLS contexts
 * that use it (and, for updates, by {@link SecretManager.update}).
 */
export function parseSecret(o: ObjReader): ParsedSecret {
  const name = o.str("name", { required: true })!;
  const kind = o.oneOf(["tls_certificate", "validation_context", "session_ticket_keys", "generic_secret"], {
    required: true,
  })!;
  if (kind === "generic_secret") {
    throw new ConfigError(
      o.at(kind),
      "is not supported (tls_certificate, validation_context and session_ticket_keys secrets are)",
    );
  }
  const value = o.value(kind);
  if (!isObj(value)) throw new ConfigError(o.at(kind), `expected an object, got ${describe(value)}`);
  return { name, kind, value };
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === "object" && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

/**
 * Checks what can be checked without knowing the TLS provider that will use the secret: its data sources read,
 * its certificates parse as PEM, its key is a PEM private key. The providers' own parsers (run by the
 * subscribers) check the rest: key types, key/certificate match, unknown fields.
 */
function checkContent(kind: SecretKind, value: Record<string, unknown>, path: string): void {
  if (kind === "session_ticket_keys") {
    // Every key must read and be 80 bytes (a copy: the reader consumes what it reads).
    readSessionTicketKeys(new ObjReader(structuredClone(value), path));
    return;
  }
  const o = new ObjReader(value, path);
  const pem = (key: string, what: "certificates" | "key"): void => {
    const ds = o.obj(key, { required: what === "key" || kind === "tls_certificate" });
    if (!ds) return;
    // A copy: readDataSource consumes the fields it reads.
    const text = readDataSource(new ObjReader(structuredClone(ds.raw), ds.path));
    if (what === "key") {
      if (!/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(text)) {
        throw new ConfigError(ds.path, "is not a PEM private key");
      }
      return;
    }
    let n: number;
    try {
      n = parseCertificates(text).length;
    } catch (e) {
      throw new ConfigError(ds.path, `is not a PEM certificate list: ${errorText(e).replace(/\s*\n\s*/g, " ")}`);
    }
    if (n === 0) throw new ConfigError(ds.path, "holds no certificate");
  };
  if (kind === "tls_certificate") {
    pem("certificate_chain", "certificates");
    pem("private_key", "key");
  } else pem("trusted_ca", "certificates");
}

/**
 * Named, versioned secrets with subscriptions (Envoy's `SecretManager` plus its SDS providers, for static and
 * runtime-updated secrets). One per server; the TLS contexts of listeners and clusters subscribe to the secrets
 * they name.
 */
export class SecretManager {
  #secrets = new Map<string, Secret>();
  #subscribers = new Map<string, Set<SecretSubscriber>>();

  /**
   * Adds a secret at version 1 (static config). Throws a {@link ConfigError} at `path`.name if the name is taken.
   */
  add(secret: ParsedSecret & { readonly path?: string }): Secret {
    const path = secret.path ?? "secret";
    // Ticket keys are checked here, so a short key is named at the secret, not where a context uses it.
    if (secret.kind === "session_ticket_keys") checkContent(secret.kind, secret.value, `${path}.session_ticket_keys`);
    const old = this.#secrets.get(secret.name);
    if (old) {
      throw new ConfigError(`${path}.name`, `secret ${describe(secret.name)} is already defined at ${old.path}`);
    }
    const s: Secret = {
      name: secret.name,
      kind: secret.kind,
      value: deepFreeze(structuredClone(secret.value)),
      version: 1,
      path,
    };
    this.#secrets.set(s.name, s);
    return s;
  }

  /** The current version of the secret `name`, or undefined. */
  get(name: string): Secret | undefined {
    return this.#secrets.get(name);
  }

  /** The names of all secrets, in the order they were added. */
  get names(): string[] {
    return [...this.#secrets.keys()];
  }

  /**
   * Replaces the secret `name` with `raw`, one Envoy v3 `Secret` (its `name` may be left out), parsed at `path`.
   * The kind must stay the same. Every subscriber validates the candidate first; if the secret is unknown, does not
   * parse, or any subscriber rejects it, this throws a one-line {@link ConfigError} naming the field path and
   * nothing changes. Returns the new version.
   */
  update(name: string, raw: unknown, path = "secret"): Secret {
    const cur = this.#secrets.get(name);
    if (!cur) {
      const known = this.names.length > 0 ? ` (known: ${this.names.join(", ")})` : "";
      throw new ConfigError(path, `unknown secret ${describe(name)}${known}`);
    }
    const named = isObj(raw) && !("name" in raw) ? { name, ...raw } : raw;
    const o = new ObjReader(named, path);
    const parsed = parseSecret(o);
    o.done();
    if (parsed.name !== name) {
      throw new ConfigError(
        o.at("name"),
        `is ${describe(parsed.name)}, but the secret being updated is ${describe(name)}`,
      );
    }
    if (parsed.kind !== cur.kind) {
      throw new ConfigError(o.at(parsed.kind), `secret ${describe(name)} is a ${cur.kind}, not a ${parsed.kind}`);
    }
    const valuePath = o.at(parsed.kind);
    checkContent(parsed.kind, structuredClone(parsed.value), valuePath);
    const next: Secret = {
      name,
      kind: cur.kind,
      value: deepFreeze(structuredClone(parsed.value)),
      version: cur.version + 1,
      path: cur.path,
    };
    const commits: (() => void)[] = [];
    for (const sub of [...this.#subscribers.get(name) ?? []]) {
      let commit: (() => void) | void;
      try {
        commit = sub(next);
      } catch (e) {
        // The subscriber's parser names the field where the secret's content landed in its context.
        if (e instanceof ConfigError) throw new ConfigError(valuePath, `${e.path}: ${e.detail}`, { cause: e });
        throw new ConfigError(valuePath, errorText(e).replace(/\s*\n\s*/g, " "), { cause: e });
      }
      if (commit) commits.push(commit);
    }
    this.#secrets.set(name, next);
    for (const c of commits) c();
    return next;
  }

  /**
   * Calls `subscriber` with every candidate version of `name` (see {@link SecretSubscriber}). Returns the function
   * that unsubscribes. Subscribing to a name that does not exist (yet) is allowed.
   */
  subscribe(name: string, subscriber: SecretSubscriber): () => void {
    let set = this.#subscribers.get(name);
    if (!set) {
      set = new Set();
      this.#subscribers.set(name, set);
    }
    set.add(subscriber);
    return () => {
      this.#subscribers.get(name)?.delete(subscriber);
    };
  }

  /** How many subscribers `name` has (for tests and the admin API). */
  subscriberCount(name: string): number {
    return this.#subscribers.get(name)?.size ?? 0;
  }
}
