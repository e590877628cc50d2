/**
 * Removes secrets from config before the admin API prints it (`/config_dump`), as Envoy does for fields marked
 * `sensitive`: private keys, passwords, generic secrets, session ticket keys, HMAC and OAuth secrets.
 *
 * A sensitive field that holds a `DataSource` keeps its shape and its `filename` (a path is not a secret) but its
 * inline content (`inline_string`, `inline_bytes`, `environment_variable`) becomes `"[redacted]"`; a sensitive
 * scalar becomes `"[redacted]"`; lists and nested objects under a sensitive field are redacted throughout.
 *
 * @example
 * ```ts
 * redactSecrets({ private_key: { inline_string: "-----BEGIN..." } });
 * // { private_key: { inline_string: "[redacted]" } }
 * ```
 *
 * @module
 */

/** The value that replaces a secret. */
export const REDACTED = "[redacted]";

// snake_case names; camelCase spellings are folded before lookup.
const SENSITIVE = new Set([
  "private_key",
  "password",
  "secret",
  "session_ticket_keys",
  "hmac_secret",
  "client_secret",
  "token_secret",
  "pkcs12",
  "api_key",
  "access_key",
  "secret_access_key",
  "shared_secret",
  "preshared_key",
]);

function snake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** True if a field of this name holds a secret (`private_key`, `sign_private_key`, `password`, ...). */
export function isSensitiveField(key: string): boolean {
  const k = snake(key);
  return SENSITIVE.has(k) || k.endsWith("_private_key") || k.endsWith("_password") || k.endsWith("_secret");
}

/** Everything under a sensitive field: keep structure and file paths, hide content. */
function redactAll(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(redactAll);
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      const sk = snake(k);
      // A file path and the Any type name are not secrets; everything else here is.
      out[k] = sk === "filename" || sk === "@type" || sk === "watched_directory" ? x : redactAll(x);
    }
    return out;
  }
  return REDACTED;
}

/** A deep copy of `value` with every secret replaced by {@link REDACTED}. The input is not modified. */
export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      out[k] = isSensitiveField(k) && v !== null && v !== undefined ? redactAll(v) : redactSecrets(v);
    }
    return out;
  }
  return value;
}
