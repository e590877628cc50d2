/**
 * {@link computeHashKey}: the request hash of a route's `hash_policy`, for RING_HASH and MAGLEV (Envoy's
 * `HashPolicyImpl`).
 *
 * Each policy hashes one input with xxHash64: a header's value (after `regex_rewrite`; several values are sorted and
 * combined), a cookie's value, the downstream client IP (`connection_properties.source_ip`), or a query parameter.
 * Hashes of several policies combine as Envoy's do (`rotl(h, 1) ^ next`); a `terminal` policy that produced a
 * hash ends the walk. A cookie policy with a `ttl` whose cookie is missing generates one, as Envoy does: its value
 * is the hex xxHash64 of the client address, the request is hashed on that value, and the router sends the cookie
 * in a `set-cookie` response header. The result is the upper 52 bits of the 64-bit hash (`hashKey52`).
 *
 * @module
 */
import type { HeaderMap } from "../../api/headers.ts";
import type { HashPolicy } from "../../router/types.ts";
import { xxhash64StringParts } from "./xxhash64.ts";

/** The hash of a request, and a cookie to set on its response. */
export interface HashResult {
  /** Undefined if no policy produced a hash (balancers then pick at random). */
  readonly hashKey: number | undefined;
  /** A `set-cookie` value to add to the response (cookie policy with `ttl`, cookie absent). */
  readonly setCookie: string | undefined;
}

function hashParts(s: string): [number, number] {
  return xxhash64StringParts(s);
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    let v = part.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    return v;
  }
  return undefined;
}

function queryValue(path: string | undefined, name: string): string | undefined {
  if (path === undefined) return undefined;
  const q = path.indexOf("?");
  if (q < 0) return undefined;
  const end = path.indexOf("#", q);
  for (const kv of path.slice(q + 1, end < 0 ? undefined : end).split("&")) {
    const eq = kv.indexOf("=");
    const k = eq < 0 ? kv : kv.slice(0, eq);
    if (k === name) return eq < 0 ? "" : kv.slice(eq + 1);
  }
  return undefined;
}

/** Envoy's `makeSetCookieValue`: `name="value"; Max-Age=N; Path=p; attr=v; HttpOnly`. */
function setCookieValue(p: Extract<HashPolicy, { kind: "cookie" }>, value: string): string {
  let s = `${p.name}="${value}"`;
  if (p.ttlMs !== undefined && p.ttlMs > 0) s += `; Max-Age=${Math.floor(p.ttlMs / 1000)}`;
  if (p.path !== undefined) s += `; Path=${p.path}`;
  for (const a of p.attributes) s += a.value === "" ? `; ${a.name}` : `; ${a.name}=${a.value}`;
  return s + "; HttpOnly";
}

/**
 * Computes the request hash for `policies` over the request `headers` and the client address `sourceIp`
 * (without port). See the module doc.
 */
export function computeHashKey(
  policies: readonly HashPolicy[],
  headers: HeaderMap,
  sourceIp: string | undefined,
): HashResult {
  let have = false;
  let hi = 0, lo = 0;
  let setCookie: string | undefined;
  const combine = (p: [number, number]) => {
    if (!have) {
      [hi, lo] = p;
      have = true;
      return;
    }
    // rotl(h, 1) ^ next, on 32-bit halves.
    const nhi = ((hi << 1) | (lo >>> 31)) >>> 0;
    const nlo = ((lo << 1) | (hi >>> 31)) >>> 0;
    hi = (nhi ^ p[0]) >>> 0;
    lo = (nlo ^ p[1]) >>> 0;
  };
  for (const p of policies) {
    let h: [number, number] | undefined;
    switch (p.kind) {
      case "header": {
        const values = headers.getAll(p.headerName);
        if (values.length === 0) break;
        const vs = values.map((v) => p.regexRewrite ? p.regexRewrite.apply(v) : v);
        if (vs.length > 1) vs.sort();
        h = hashParts(vs[0]!);
        for (let i = 1; i < vs.length; i++) {
          const n = hashParts(vs[i]!);
          h = [(h[0] ^ n[0]) >>> 0, (h[1] ^ n[1]) >>> 0];
        }
        break;
      }
      case "cookie": {
        const v = cookieValue(headers.getJoined("cookie")?.replaceAll(",", ";"), p.name);
        if (v !== undefined) {
          h = hashParts(v);
        } else if (p.ttlMs !== undefined && sourceIp !== undefined) {
          const [a, b] = hashParts(sourceIp);
          const value = a.toString(16).padStart(8, "0") + b.toString(16).padStart(8, "0");
          setCookie = setCookieValue(p, value);
          h = hashParts(value);
        }
        break;
      }
      case "connection_properties":
        if (p.sourceIp && sourceIp !== undefined && sourceIp !== "") h = hashParts(sourceIp);
        break;
      case "query_parameter": {
        const v = queryValue(headers.get(":path"), p.name);
        if (v !== undefined) h = hashParts(v);
        break;
      }
    }
    if (h !== undefined) combine(h);
    if (have && p.terminal) break;
  }
  return { hashKey: have ? hi * 0x100000 + (lo >>> 12) : undefined, setCookie };
}
