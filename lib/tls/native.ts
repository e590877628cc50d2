/**
 * The `native` TLS provider: Envoy's `envoy.transport_sockets.tls` on Deno's rustls.
 *
 * What Deno 2.9 offers, and how this provider uses it:
 * - `Deno.listenTls` owns its socket and reports only the ALPN protocol after the handshake (no version, suite,
 *   SNI or client certificate). The listener uses it directly when a listener has a single native chain without
 *   client-certificate validation (the fast path, {@link nativeListenTlsOptions}).
 * - `node:tls` `TLSSocket` runs a server or client handshake over any duplex stream, so it serves an accepted TCP
 *   connection after the ClientHello was peeked (mixed ports), selects a certificate by SNI, and reports version,
 *   suite, ALPN and SNI. Its `ciphers` option is ignored and `requestCert` does not check the chain: this provider
 *   checks the negotiated suite against `cipher_suites` and verifies the client chain itself (any key type rustls
 *   takes, via `lib/crypto/x509.ts`) after the handshake.
 * - Clients (clusters) always use `node:tls`, which verifies the chain against `trusted_ca` and the host name.
 *
 * Certificates and keys: whatever rustls signs with — RSA (2048 bits and up), ECDSA P-256/P-384/P-521 and
 * Ed25519. The leaf is read only for its names (SNI selection); its key is checked at load against the private
 * key with `node:crypto`, so a wrong, mismatched or unusable key is a config error naming its field, not a
 * failed handshake later.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import tls from "node:tls";
import { ConfigError } from "../api/errors.ts";
import type { NetConnection } from "../api/network.ts";
import {
  type Certificate,
  checkHostname,
  parseCertificate,
  parseCertificates,
  verifyCertificateChain,
} from "../crypto/x509.ts";
import { publicKeyName } from "../crypto/pem.ts";
import type { ObjReader } from "../config/reader.ts";
import { errorText, parseStringMatcher, readDataSource, type StringMatch } from "./_common.ts";
import { nodeHandshakeInfo, NodeTlsConnection, transportDuplex } from "./_node_tls.ts";
import { parseMaxSessionKeys, parseServerResumption } from "./_session_resumption.ts";
import { getLogger } from "../observe/log.ts";
import type {
  SecureConnection,
  TlsAcceptOptions,
  TlsConnectOptions,
  TlsProvider,
  TlsProviderFactory,
} from "./provider.ts";
import { TlsHandshakeError } from "./provider.ts";
import { schedule } from "../network/timer_wheel.ts";

/** Envoy's transport socket `@type` for TLS. */
export const DOWNSTREAM_TLS_CONTEXT_TYPE =
  "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";
/** Envoy's upstream TLS `@type`. */
export const UPSTREAM_TLS_CONTEXT_TYPE =
  "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";

/** TLS versions rustls speaks. */
export type NativeTlsVersion = "TLSv1.2" | "TLSv1.3";

/** The suites rustls negotiates, by the names Envoy (OpenSSL) and node use. */
export const NATIVE_CIPHER_SUITES: readonly string[] = [
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-RSA-CHACHA20-POLY1305",
];

/** One certificate and its key, PEM. */
export interface NativeCertificate {
  readonly certificateChain: string;
  readonly privateKey: string;
  /** DNS names of the leaf (lower case), for SNI selection. */
  readonly names: readonly string[];
  /**
   * The `node:tls` secure context of this pair, built on first use and kept with the certificate (config-time
   * state, DESIGN §4): a rotated certificate is a new object, so it never reuses the old pair's context.
   */
  readonly secureContext: () => tls.SecureContext;
}

/** A SAN matcher of `match_typed_subject_alt_names`. */
export interface SanMatcher {
  readonly type: "DNS" | "IP_ADDRESS" | "URI" | "EMAIL";
  readonly match: StringMatch;
}

/** `validation_context`, loaded. */
export interface NativeValidation {
  readonly trustedCaPem: string | undefined;
  readonly roots: readonly Certificate[];
  readonly sanMatchers: readonly SanMatcher[];
}

/** Settings shared by both sides (`common_tls_context`). */
export interface NativeCommonContext {
  readonly certificates: readonly NativeCertificate[];
  readonly alpn: readonly string[];
  readonly minVersion: NativeTlsVersion;
  readonly maxVersion: NativeTlsVersion;
  /** Allowed suites; undefined = rustls defaults. */
  readonly cipherSuites: readonly string[] | undefined;
  readonly validation: NativeValidation | undefined;
}

/** A parsed `DownstreamTlsContext`. */
export interface NativeServerContext extends NativeCommonContext {
  readonly side: "server";
  readonly requireClientCertificate: boolean;
  /** True when the listener can run `Deno.listenTls` itself (see {@link nativeListenTlsOptions}). */
  readonly listenTlsCapable: boolean;
}

/** A parsed `UpstreamTlsContext`. */
export interface NativeClientContext extends NativeCommonContext {
  readonly side: "client";
  readonly sni: string | undefined;
}

function parseVersion(o: ObjReader, key: string): NativeTlsVersion | "low" | undefined {
  const v = o.enumOf(key, ["TLS_AUTO", "TLSv1_0", "TLSv1_1", "TLSv1_2", "TLSv1_3"] as const);
  if (v === undefined || v === "TLS_AUTO") return undefined;
  if (v === "TLSv1_0" || v === "TLSv1_1") return "low";
  return v === "TLSv1_2" ? "TLSv1.2" : "TLSv1.3";
}

function parseCommon(o: ObjReader, side: "server" | "client"): NativeCommonContext {
  let minVersion: NativeTlsVersion = "TLSv1.2";
  let maxVersion: NativeTlsVersion = "TLSv1.3";
  let cipherSuites: string[] | undefined;
  const p = o.obj("tls_params");
  if (p) {
    const min = parseVersion(p, "tls_minimum_protocol_version");
    const max = parseVersion(p, "tls_maximum_protocol_version");
    // TLS 1.0/1.1 as a minimum: the runtime starts at 1.2 anyway (Envoy's default minimum for servers is 1.0).
    if (min !== undefined && min !== "low") minVersion = min;
    if (max === "low") {
      throw new ConfigError(p.at("tls_maximum_protocol_version"), "TLS 1.0 and 1.1 are not supported (rustls)");
    }
    if (max !== undefined) maxVersion = max;
    if (minVersion === "TLSv1.3" && maxVersion === "TLSv1.2") {
      throw new ConfigError(p.path, "tls_minimum_protocol_version is above tls_maximum_protocol_version");
    }
    const suites = p.strs("cipher_suites");
    if (suites.length > 0) {
      cipherSuites = [];
      suites.forEach((s, i) => {
        // Envoy's equal-preference groups "[A|B]" list the same names.
        for (const name of s.replace(/^\[|\]$/g, "").split("|")) {
          if (!NATIVE_CIPHER_SUITES.includes(name)) {
            throw new ConfigError(
              `${p.at("cipher_suites")}[${i}]`,
              `${JSON.stringify(name)} is not supported by the native provider (rustls offers ${
                NATIVE_CIPHER_SUITES.join(", ")
              })`,
            );
          }
          cipherSuites!.push(name);
        }
      });
    }
    p.strs("ecdh_curves");
    p.strs("signature_algorithms");
    p.unsupported("compliance_policies");
    p.done();
  }
  const certificates = o.objs("tls_certificates", (c) => {
    const chainO = c.obj("certificate_chain", { required: true })!;
    const keyO = c.obj("private_key", { required: true })!;
    const certificateChain = readDataSource(chainO);
    const privateKey = readDataSource(keyO);
    let leaf: Certificate | undefined;
    try {
      leaf = parseCertificates(certificateChain)[0];
    } catch (e) {
      throw new ConfigError(chainO.path, `is not a PEM certificate chain: ${oneLine(errorText(e))}`);
    }
    if (!leaf) throw new ConfigError(chainO.path, "holds no certificate");
    checkKeyPair(leaf, chainO.path, privateKey, keyO.path);
    c.unsupported("pkcs12");
    c.unsupported("watched_directory");
    c.unsupported("private_key_provider");
    c.unsupported("password", "is not supported (use an unencrypted key)");
    c.unsupported("ocsp_staple");
    c.unsupported("signed_certificate_timestamp");
    const names = [...leaf.dnsNames];
    if (names.length === 0 && leaf.commonName) names.push(leaf.commonName.toLowerCase());
    let sc: tls.SecureContext | undefined;
    const secureContext = () => sc ??= tls.createSecureContext({ cert: certificateChain, key: privateKey });
    return { certificateChain, privateKey, names, secureContext };
  });
  if (side === "server" && certificates.length === 0) {
    throw new ConfigError(o.at("tls_certificates"), "must have at least one entry (a server needs a certificate)");
  }
  if (side === "client" && certificates.length > 1) {
    throw new ConfigError(o.at("tls_certificates"), "a client uses at most one certificate");
  }
  const alpn = o.strs("alpn_protocols");
  let validation: NativeValidation | undefined;
  const vc = o.obj("validation_context");
  if (vc) validation = parseValidation(vc);
  for (
    const k of [
      "tls_certificate_sds_secret_configs",
      "tls_certificate_provider_instance",
      "tls_certificate_certificate_provider",
      "tls_certificate_certificate_provider_instance",
      "validation_context_sds_secret_config",
      "combined_validation_context",
      "validation_context_certificate_provider",
      "validation_context_certificate_provider_instance",
      "custom_handshaker",
      "key_log",
      "custom_tls_certificate_selector",
    ]
  ) o.unsupported(k);
  o.done();
  return { certificates, alpn, minVersion, maxVersion, cipherSuites, validation };
}

/** The EC curves rustls signs with, by node's names. */
const RUSTLS_CURVES: readonly string[] = ["prime256v1", "secp384r1", "secp521r1"];
/** rustls refuses smaller RSA keys. */
const MIN_RSA_BITS = 2048;

function spkiOf(key: KeyObject): Buffer {
  return key.export({ type: "spki", format: "der" });
}

/**
 * Checks at load what rustls would otherwise refuse at the first handshake (or at bind): a private key it cannot
 * sign with, or one that is not the leaf's.
 */
function checkKeyPair(leaf: Certificate, chainPath: string, privateKey: string, keyPath: string): void {
  if (leaf.publicKey.curve === "sm2") {
    throw new ConfigError(
      chainPath,
      `certificate "${leaf.subject}" has an SM2 key, which standard TLS (rustls) cannot use: ` +
        "serve it with the ferry.transport_sockets.gm transport socket",
    );
  }
  if (!/-----BEGIN (RSA |EC )?PRIVATE KEY-----/.test(privateKey)) {
    throw new ConfigError(keyPath, "is not a PEM private key");
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(privateKey);
  } catch (e) {
    throw new ConfigError(keyPath, `is not a PEM private key: ${oneLine(errorText(e))}`);
  }
  const type = key.asymmetricKeyType ?? "unknown";
  const details = key.asymmetricKeyDetails ?? {};
  const supported = type === "ed25519" ||
    (type === "rsa" && (details.modulusLength ?? 0) >= MIN_RSA_BITS) ||
    (type === "ec" && RUSTLS_CURVES.includes(details.namedCurve ?? ""));
  if (!supported) {
    const what = type === "rsa"
      ? `a ${details.modulusLength}-bit RSA key`
      : type === "ec"
      ? `an EC key on ${details.namedCurve ?? "an unnamed curve"}`
      : `a key of type ${type}`;
    throw new ConfigError(
      keyPath,
      `${what} is not supported by the native provider (rustls signs with RSA of ${MIN_RSA_BITS} bits or more, ` +
        "ECDSA P-256, P-384, P-521 and Ed25519)",
    );
  }
  let certKey: KeyObject;
  try {
    certKey = createPublicKey({ key: Buffer.from(leaf.publicKey.der), format: "der", type: "spki" });
  } catch (e) {
    throw new ConfigError(
      chainPath,
      `certificate "${leaf.subject}": its ${publicKeyName(leaf.publicKey)} key does not load: ${oneLine(errorText(e))}`,
    );
  }
  if (!spkiOf(createPublicKey(key)).equals(spkiOf(certKey))) {
    throw new ConfigError(keyPath, `does not match certificate "${leaf.subject}" (the first of certificate_chain)`);
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ");
}

function parseValidation(vc: ObjReader): NativeValidation {
  let trustedCaPem: string | undefined;
  let roots: Certificate[] = [];
  const ca = vc.obj("trusted_ca");
  if (ca) {
    trustedCaPem = readDataSource(ca);
    try {
      roots = parseCertificates(trustedCaPem);
    } catch (e) {
      throw new ConfigError(ca.path, `is not a PEM certificate list: ${oneLine(errorText(e))}`);
    }
    if (roots.length === 0) throw new ConfigError(ca.path, "holds no certificate");
  }
  const sanMatchers = vc.objs("match_typed_subject_alt_names", (m) => {
    const type = m.enumOf("san_type", ["DNS", "IP_ADDRESS", "URI", "EMAIL"] as const, {
      required: true,
      known: ["OTHER_NAME", "SAN_TYPE_UNSPECIFIED"],
    })!;
    const match = parseStringMatcher(m.obj("matcher", { required: true })!);
    m.unsupported("oid");
    return { type, match };
  });
  vc.unsupported("match_subject_alt_names", "is deprecated: use match_typed_subject_alt_names");
  for (
    const k of [
      "ca_certificate_provider_instance",
      "watched_directory",
      "verify_certificate_spki",
      "verify_certificate_hash",
      "require_signed_certificate_timestamp",
      "crl",
      "custom_validator_config",
      "only_verify_leaf_cert_crl",
      "system_root_certs",
    ]
  ) vc.unsupported(k);
  const tcv = vc.enumOf("trust_chain_verification", ["VERIFY_TRUST_CHAIN"] as const, { known: ["ACCEPT_UNTRUSTED"] });
  void tcv;
  vc.bool("allow_expired_certificate") && vc.unsupported("allow_expired_certificate");
  vc.int("max_verify_depth", { min: 1 });
  vc.done();
  return { trustedCaPem, roots, sanMatchers };
}

/**
 * The resumption fields of a native server context are checked (80-byte keys, durations) but rustls keeps its own
 * state, in memory: TLS 1.3 and TLS 1.2 resume on both the `Deno.listenTls` path (a per-listener session cache;
 * `ssl.session_reused` is not counted there, Deno does not report reuse) and the `node:tls` path (counted).
 * Deno exposes neither ticket keys nor timeouts, so a field that asks for them gets a one-line warning naming it
 * (tests/integration/tls_resumption_test.ts shows the behaviour with `openssl s_client -sess_out/-sess_in`).
 */
function warnNativeResumption(o: ObjReader): void {
  const sds = o.has("session_ticket_keys_sds_secret_config");
  parseServerResumption(o, { sdsKeys: sds });
  o.skip("session_ticket_keys_sds_secret_config");
  const ignored = ["session_ticket_keys", "session_ticket_keys_sds_secret_config", "session_timeout"].filter((k) =>
    o.has(k)
  );
  for (const k of ["disable_stateless_session_resumption", "disable_stateful_session_resumption"]) {
    if (o.raw[k] === true) ignored.push(k);
  }
  for (const k of ignored) {
    nativeLog.warn(`${o.at(k)}: ignored: the native provider (rustls) manages its own session resumption state`);
  }
}

const nativeLog = getLogger("tls");

/** Parses a `DownstreamTlsContext` (typed_config without `@type` consumed by the caller). */
export function parseDownstreamTlsContext(o: ObjReader): NativeServerContext {
  const cc = o.obj("common_tls_context", { required: true })!;
  const common = parseCommon(cc, "server");
  const requireClientCertificate = o.bool("require_client_certificate") ?? false;
  if (requireClientCertificate && (!common.validation || common.validation.roots.length === 0)) {
    throw new ConfigError(
      o.at("require_client_certificate"),
      "needs common_tls_context.validation_context.trusted_ca to verify client certificates",
    );
  }
  o.bool("require_sni") && o.unsupported("require_sni", "true is not supported");
  warnNativeResumption(o);
  o.skip("prefer_client_ciphers", "full_scan_certs_on_sni_mismatch");
  o.unsupported("ocsp_staple_policy");
  const listenTlsCapable = !requireClientCertificate && common.validation === undefined &&
    common.cipherSuites === undefined && common.minVersion === "TLSv1.2" && common.maxVersion === "TLSv1.3";
  return { side: "server", ...common, requireClientCertificate, listenTlsCapable };
}

/** Parses an `UpstreamTlsContext`. */
export function parseUpstreamTlsContext(o: ObjReader): NativeClientContext {
  const cc = o.obj("common_tls_context");
  const common: NativeCommonContext = cc ? parseCommon(cc, "client") : {
    certificates: [],
    alpn: [],
    minVersion: "TLSv1.2",
    maxVersion: "TLSv1.3",
    cipherSuites: undefined,
    validation: undefined,
  };
  const sni = o.str("sni");
  if (o.bool("allow_renegotiation")) o.unsupported("allow_renegotiation", "true is not supported (rustls)");
  parseMaxSessionKeys(o); // rustls keeps its own client session cache (node:tls)
  o.unsupported("auto_host_sni");
  o.unsupported("auto_sni_san_validation");
  o.bool("enforce_rsa_key_usage");
  return { side: "client", ...common, sni: sni === "" ? undefined : sni };
}

/**
 * `Deno.listenTls` options for a context that is {@link NativeServerContext.listenTlsCapable}: one certificate, or
 * several chosen by SNI through the runtime's (unstable, internal) SNI resolver symbol.
 */
export function nativeListenTlsOptions(ctx: NativeServerContext): Record<string | symbol, unknown> {
  const first = ctx.certificates[0]!;
  const opts: Record<string | symbol, unknown> = { cert: first.certificateChain, key: first.privateKey };
  if (ctx.alpn.length > 0) opts.alpnProtocols = [...ctx.alpn];
  if (ctx.certificates.length > 1) {
    const resolve = (sni: string) => {
      const c = pickCertificate(ctx.certificates, sni);
      return { cert: c.certificateChain, key: c.privateKey };
    };
    opts[Symbol.for("unstableSniResolver")] = resolve; // through a local: see tests/gc_hygiene_test.ts
  }
  return opts;
}

function nameMatches(pattern: string, host: string): boolean {
  if (pattern === host) return true;
  if (!pattern.startsWith("*.")) return false;
  const suffix = pattern.slice(1);
  return host.endsWith(suffix) && !host.slice(0, host.length - suffix.length).includes(".");
}

/** The certificate for an SNI: an exact name, then a wildcard, else the first (Envoy's order). */
export function pickCertificate(certs: readonly NativeCertificate[], sni: string | undefined): NativeCertificate {
  if (sni) {
    const host = sni.toLowerCase();
    const exact = certs.find((c) => c.names.includes(host));
    if (exact) return exact;
    const wild = certs.find((c) => c.names.some((n) => nameMatches(n, host)));
    if (wild) return wild;
  }
  return certs[0]!;
}

function sanValues(cert: Certificate, type: SanMatcher["type"]): readonly string[] {
  if (type === "DNS") return cert.dnsNames;
  if (type === "IP_ADDRESS") return cert.ipAddresses;
  if (type === "URI") return cert.uris;
  return cert.emails;
}

/** Verifies a peer chain (DER, leaf first) against a validation context; throws TlsHandshakeError("verify"). */
export function verifyPeer(chain: readonly Uint8Array[], v: NativeValidation, hostname?: string): void {
  let certs: Certificate[];
  try {
    certs = chain.map((d) => parseCertificate(d));
  } catch (e) {
    throw new TlsHandshakeError("verify", `peer certificate: ${errorText(e)}`, { alert: "bad_certificate" });
  }
  const leaf = certs[0];
  if (!leaf) {
    throw new TlsHandshakeError("no_certificate", "peer sent no certificate", { alert: "certificate_required" });
  }
  try {
    if (v.roots.length > 0) verifyCertificateChain(leaf, { roots: v.roots, intermediates: certs.slice(1) });
    if (hostname !== undefined) checkHostname(leaf, hostname);
  } catch (e) {
    throw new TlsHandshakeError("verify", `peer certificate: ${errorText(e)}`, { alert: "bad_certificate" });
  }
  if (v.sanMatchers.length > 0 && !v.sanMatchers.some((m) => sanValues(leaf, m.type).some((s) => m.match(s)))) {
    throw new TlsHandshakeError("verify", `peer certificate "${leaf.subject}": no subject alternative name matches`, {
      alert: "bad_certificate",
    });
  }
}

function classify(e: unknown, fallback: string): TlsHandshakeError {
  if (e instanceof TlsHandshakeError) return e;
  const msg = errorText(e);
  if (/no certificates|certificate required|CertificateRequired/i.test(msg)) {
    return new TlsHandshakeError("no_certificate", `${fallback}: ${msg}`, { alert: "certificate_required" });
  }
  if (/verify|certificate|altnames|self.signed/i.test(msg)) {
    return new TlsHandshakeError("verify", `${fallback}: ${msg}`, { alert: "bad_certificate", cause: e });
  }
  return new TlsHandshakeError("handshake", `${fallback}: ${msg}`, { cause: e });
}

function handshakeWithTimeout(
  socket: tls.TLSSocket,
  event: "secure" | "secureConnect",
  timeoutMs: number,
  what: string,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let done = false;
    const finish = (err?: TlsHandshakeError) => {
      if (done) return;
      done = true;
      timer.cancel();
      socket.off("error", onError);
      socket.off("close", onClose);
      socket.off("end", onClose);
      if (err) {
        socket.destroy();
        reject(err);
      } else resolve();
    };
    const onError = (e: Error) => finish(classify(e, what));
    const onClose = () => finish(new TlsHandshakeError("closed", `${what}: peer closed during the handshake`));
    const timer = schedule(
      timeoutMs,
      () => finish(new TlsHandshakeError("timeout", `${what}: handshake timed out after ${timeoutMs} ms`)),
    );
    socket.once(event, () => finish());
    socket.on("error", onError);
    socket.once("close", onClose);
    // A peer that hangs up mid-handshake ends the stream without closing the TLS socket: without this the
    // handshake would wait for its timeout.
    socket.once("end", onClose);
  });
}

function checkSuite(ctx: NativeCommonContext, cipher: string, what: string): void {
  if (ctx.cipherSuites && !ctx.cipherSuites.includes(cipher)) {
    throw new TlsHandshakeError("handshake", `${what}: negotiated suite ${cipher} is not in cipher_suites`, {
      alert: "insufficient_security",
    });
  }
}

/** Server side over an accepted (possibly peeked) connection. */
async function accept(
  transport: NetConnection,
  ctx: NativeServerContext,
  options: TlsAcceptOptions,
): Promise<SecureConnection> {
  const what = `tls from ${transport.remoteAddress}:${transport.remotePort}`;
  const duplex = transportDuplex(transport, options.initial);
  let sni: string | undefined;
  const first = ctx.certificates[0]!;
  const socket = new tls.TLSSocket(duplex, {
    isServer: true,
    secureContext: first.secureContext(),
    ALPNProtocols: [...ctx.alpn],
    minVersion: ctx.minVersion,
    maxVersion: ctx.maxVersion,
    requestCert: ctx.requireClientCertificate || ctx.validation !== undefined,
    rejectUnauthorized: ctx.requireClientCertificate,
    SNICallback: (name: string, cb: (err: Error | null, sc?: tls.SecureContext) => void) => {
      sni = name;
      cb(null, pickCertificate(ctx.certificates, name).secureContext());
    },
  });
  try {
    await handshakeWithTimeout(socket, "secure", options.timeoutMs, what);
    const info = nodeHandshakeInfo(socket, sni);
    checkSuite(ctx, info.cipher, what);
    if (ctx.validation) {
      if (info.peerCertificates.length === 0) {
        if (ctx.requireClientCertificate) {
          throw new TlsHandshakeError("no_certificate", `${what}: client sent no certificate`, {
            alert: "certificate_required",
          });
        }
      } else verifyPeer(info.peerCertificates, ctx.validation);
    }
    return new NodeTlsConnection(socket, transport, info, options.highWatermark);
  } catch (e) {
    socket.destroy();
    transport.close({ reason: "tls handshake failed" });
    throw classify(e, what);
  }
}

/** Client side over an opened, unstarted connection. */
async function connect(
  transport: NetConnection,
  ctx: NativeClientContext,
  options: TlsConnectOptions,
): Promise<SecureConnection> {
  const servername = ctx.sni ?? options.hostname;
  const what = `tls to ${transport.remoteAddress}:${transport.remotePort}`;
  const duplex = transportDuplex(transport);
  const cert = ctx.certificates[0];
  const v = ctx.validation;
  const socket = tls.connect({
    socket: duplex,
    ...(servername !== undefined && !/^[\d.:]+$/.test(servername) ? { servername } : {}),
    ALPNProtocols: [...ctx.alpn],
    minVersion: ctx.minVersion,
    maxVersion: ctx.maxVersion,
    ...(cert ? { cert: cert.certificateChain, key: cert.privateKey } : {}),
    ...(v?.trustedCaPem ? { ca: v.trustedCaPem } : {}),
    // Envoy verifies the upstream only when a validation context is given; so does this provider.
    rejectUnauthorized: v !== undefined && v.trustedCaPem !== undefined,
    // Host names are checked against `sni` only when SAN matchers are absent, as Envoy does with auto_sni_san.
    checkServerIdentity: () => undefined,
  });
  try {
    await handshakeWithTimeout(socket, "secureConnect", options.timeoutMs, what);
    const info = nodeHandshakeInfo(socket, servername);
    checkSuite(ctx, info.cipher, what);
    if (v && v.sanMatchers.length > 0) verifyPeer(info.peerCertificates.slice(0, 1), { ...v, roots: [] });
    return new NodeTlsConnection(socket, transport, info, options.highWatermark);
  } catch (e) {
    socket.destroy();
    transport.close({ reason: "tls handshake failed" });
    throw classify(e, what);
  }
}

/** The native provider (see the module doc). */
export const nativeProvider: TlsProvider<NativeServerContext, NativeClientContext> = {
  name: "native",
  accept,
  connect,
};

/**
 * The native provider as a registered factory: `DownstreamTlsContext` on listeners, `UpstreamTlsContext` on
 * clusters. A rotating context (certificates from the secret provider) is never `listenTlsCapable`, so its listener
 * takes the per-connection `node:tls` path, which reads the current context at every handshake.
 */
export const nativeTlsProviderFactory: TlsProviderFactory<NativeServerContext, NativeClientContext> = {
  name: "native",
  configTypes: [DOWNSTREAM_TLS_CONTEXT_TYPE, UPSTREAM_TLS_CONTEXT_TYPE],
  serverConfigTypes: [DOWNSTREAM_TLS_CONTEXT_TYPE],
  clientConfigTypes: [UPSTREAM_TLS_CONTEXT_TYPE],
  provider: nativeProvider,
  parseServer(tc, type, options) {
    if (type !== DOWNSTREAM_TLS_CONTEXT_TYPE) {
      throw new ConfigError(`${tc.path}.@type`, "a listener needs a DownstreamTlsContext, not an UpstreamTlsContext");
    }
    const context = parseDownstreamTlsContext(tc);
    tc.done();
    return options.rotating ? { ...context, listenTlsCapable: false } : context;
  },
  parseClient(tc, type) {
    if (type !== UPSTREAM_TLS_CONTEXT_TYPE) {
      throw new ConfigError(`${tc.path}.@type`, "a cluster needs an UpstreamTlsContext, not a DownstreamTlsContext");
    }
    const context = parseUpstreamTlsContext(tc);
    tc.done();
    return context;
  },
};
