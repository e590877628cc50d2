/**
 * The `gm` TLS provider: TLS 1.3 with the RFC 8998 suites and TLCP (GB/T 38636), on our TypeScript engines
 * (`lib/tls/engine/`), server and client, behind one typed transport-socket config:
 *
 * ```yaml
 * transport_socket:
 *   name: ferry.transport_sockets.gm
 *   typed_config:
 *     "@type": type.googleapis.com/ferry.transport_sockets.gm.v1.GmTlsContext
 *     versions: [TLSv1.3, TLCP]              # default: both (a client uses the first)
 *     certificate:                           # TLS 1.3-SM (sm2sig_sm3)
 *       certificate_chain: { filename: certs/server.crt }
 *       private_key: { filename: certs/server.key }
 *     sign_certificate:                      # TLCP signing pair
 *       certificate_chain: { filename: certs/server_sign.crt }
 *       private_key: { filename: certs/server_sign.key }
 *     enc_certificate:                       # TLCP encryption pair
 *       certificate_chain: { filename: certs/server_enc.crt }
 *       private_key: { filename: certs/server_enc.key }
 *     trusted_ca: { filename: certs/ca.crt } # verifies the peer
 *     # Instead of a pair or trusted_ca, a secret from the secret provider (static_resources.secrets, updated at
 *     # run time by Server.updateSecret): certificate_sds_secret_config, sign_certificate_sds_secret_config,
 *     # enc_certificate_sds_secret_config ({name} of a tls_certificate secret) and
 *     # validation_context_sds_secret_config ({name} of a validation_context secret; its trusted_ca is used).
 *     require_client_certificate: false      # server only
 *     cipher_suites: [TLS_SM4_GCM_SM3, TLS_SM4_CCM_SM3, ECC_SM4_GCM_SM3, ECC_SM4_CBC_SM3,
 *                     ECDHE_SM4_GCM_SM3, ECDHE_SM4_CBC_SM3]
 *     alpn_protocols: [http/1.1]
 *     sni: backend.example                   # client only
 *     tlcp_peer_profile: STANDARD            # client only: STANDARD (GB/T 38636, Tongsuo) or GMSSL (GmSSL 3)
 *     tlcp_client_key_exchange: BARE         # client only: overrides the profile's ECDHE ClientKeyExchange encoding
 *     # Resumption, as Envoy's DownstreamTlsContext / UpstreamTlsContext (lib/tls/_session_resumption.ts):
 *     session_ticket_keys: { keys: [{ filename: ticket.key }] }  # server: 80-byte keys, first seals (default: random)
 *     # or session_ticket_keys_sds_secret_config: { name: ticket-keys }  (a session_ticket_keys secret)
 *     disable_stateless_session_resumption: false  # server: no TLS 1.3 tickets
 *     disable_stateful_session_resumption: false   # server: no TLCP session-ID cache
 *     session_timeout: 7200s                 # server: ticket lifetime / TLCP cache lifetime
 *     max_session_keys: 1                    # client: TLS 1.3 tickets kept per server (0: no resumption)
 * ```
 *
 * Engines are looked up per version in a static table ({@link GmEngines}), so the listener path does not depend
 * on which engine is present; a version whose engine is missing is a config error naming the path.
 *
 * @module
 */
import { ConfigError } from "../api/errors.ts";
import type { NetConnection } from "../api/network.ts";
import type { ObjReader } from "../config/reader.ts";
import { readSm2PrivateKey } from "../crypto/pem.ts";
import { sm2ArithmeticBuild, type Sm2PrivateKey } from "../crypto/sm2.ts";
import { getLogger } from "../observe/log.ts";
import type { GmContext, GmEngines, GmKeyPair, GmVersion } from "./_gm_types.ts";
import { TLCP_PEER_PROFILES, TlcpSessionCache } from "./engine/tlcp/mod.ts";
import { type Certificate, certificateSm2PublicKey, parseCertificates } from "../crypto/x509.ts";
import { errorText, readDataSource } from "./_common.ts";
import { eventLoops, parseMaxSessionKeys, parseServerResumption } from "./_session_resumption.ts";
/** `main.ts` records `--concurrency` with it before parsing the config (TLCP session caches are shared then). */
export { setEventLoops } from "./_session_resumption.ts";
import { type ClientHelloInfo, gmVersionOf, parseClientHello } from "./client_hello.ts";
import { runEngineHandshake } from "./engine_connection.ts";
import { builtinGmEngines } from "./gm_engines.ts";
import { prepareSm4Aead } from "../crypto/sm4_aead.ts";
import type {
  SecureConnection,
  TlsAcceptOptions,
  TlsConnectOptions,
  TlsProvider,
  TlsProviderFactory,
} from "./provider.ts";
import { TlsHandshakeError } from "./provider.ts";
import { schedule } from "../network/timer_wheel.ts";

const gmLog = getLogger("tls");

/** The `@type` of the GM transport socket config. */
export const GM_TLS_CONTEXT_TYPE = "type.googleapis.com/ferry.transport_sockets.gm.v1.GmTlsContext";
/** The same message under Ferry's own type prefix. */
export const GM_TLS_CONTEXT_TYPE_FERRY = "type.ferry.dev/ferry.transport_sockets.gm.v1.GmTlsContext";

/** TLS 1.3 SM suites (RFC 8998). */
export const GM_TLS13_SUITES: readonly string[] = ["TLS_SM4_GCM_SM3", "TLS_SM4_CCM_SM3"];
/** TLCP suites (GB/T 38636). */
export const GM_TLCP_SUITES: readonly string[] = [
  "ECC_SM4_GCM_SM3",
  "ECC_SM4_CBC_SM3",
  "ECDHE_SM4_GCM_SM3",
  "ECDHE_SM4_CBC_SM3",
];

export type {
  GmContext,
  GmEngineFactory,
  GmEngineInit,
  GmEngines,
  GmEngineState,
  GmKeyPair,
  GmTlcpPeerProfile,
  GmTls13EngineFactory,
  GmVersion,
} from "./_gm_types.ts";

function readPair(o: ObjReader): GmKeyPair {
  const chainO = o.obj("certificate_chain", { required: true })!;
  const keyO = o.obj("private_key", { required: true })!;
  const chainPem = readDataSource(chainO);
  const keyPem = readDataSource(keyO);
  let chain: Certificate[];
  try {
    chain = parseCertificates(chainPem);
  } catch (e) {
    throw new ConfigError(chainO.path, `is not a PEM certificate chain: ${errorText(e)}`);
  }
  if (chain.length === 0) throw new ConfigError(chainO.path, "holds no certificate");
  if (chain[0]!.publicKey.curve !== "sm2") throw new ConfigError(chainO.path, "the leaf key is not an SM2 key");
  let key: Sm2PrivateKey;
  try {
    key = readSm2PrivateKey(keyPem);
  } catch (e) {
    throw new ConfigError(keyO.path, `is not an SM2 private key: ${errorText(e)}`);
  }
  if (!key.publicKey.equals(certificateSm2PublicKey(chain[0]!))) {
    throw new ConfigError(keyO.path, "does not match the certificate's public key");
  }
  o.done();
  return { chain, chainPem, key, keyPem };
}

/**
 * Parses a `GmTlsContext` (with `@type` consumed) for `side`, checking that every enabled version has its
 * certificates (server) and an engine in `engines`.
 */
let buildReported = false;

export function parseGmTlsContext(
  o: ObjReader,
  side: "server" | "client",
  engines: GmEngines = builtinGmEngines,
): GmContext {
  if (!buildReported) {
    buildReported = true;
    if (sm2ArithmeticBuild() === "base") {
      gmLog.info(
        "gm: SM2 runs on the 32-bit WebAssembly build; start Ferry with " +
          "--v8-flags=--experimental-wasm-wide-arithmetic (deno task start and the compiled binary do) for 15-20% " +
          "cheaper GM handshakes",
      );
    }
  }
  const versionsRaw = o.strs("versions");
  const versions: GmVersion[] = [];
  versionsRaw.forEach((v, i) => {
    if (v !== "TLSv1.3" && v !== "TLCP") {
      throw new ConfigError(`${o.at("versions")}[${i}]`, `${JSON.stringify(v)} is not one of TLSv1.3, TLCP`);
    }
    if (versions.includes(v)) throw new ConfigError(`${o.at("versions")}[${i}]`, `${v} is listed twice`);
    versions.push(v);
  });
  if (versions.length === 0) versions.push("TLSv1.3", "TLCP");
  const certO = o.obj("certificate");
  const signO = o.obj("sign_certificate");
  const encO = o.obj("enc_certificate");
  const certificate = certO ? readPair(certO) : undefined;
  const signCertificate = signO ? readPair(signO) : undefined;
  const encCertificate = encO ? readPair(encO) : undefined;
  const caO = o.obj("trusted_ca");
  let roots: Certificate[] = [];
  if (caO) {
    const pem = readDataSource(caO);
    try {
      roots = parseCertificates(pem);
    } catch (e) {
      throw new ConfigError(caO.path, `is not a PEM certificate list: ${errorText(e)}`);
    }
    if (roots.length === 0) throw new ConfigError(caO.path, "holds no certificate");
  }
  const requireClientCertificate = o.bool("require_client_certificate") ?? false;
  if (side === "client" && o.has("require_client_certificate")) {
    throw new ConfigError(o.at("require_client_certificate"), "applies to servers only");
  }
  if (requireClientCertificate && roots.length === 0) {
    throw new ConfigError(o.at("require_client_certificate"), "needs trusted_ca to verify client certificates");
  }
  const suites = o.strs("cipher_suites");
  const tls13Suites: string[] = [];
  const tlcpSuites: string[] = [];
  suites.forEach((s, i) => {
    if (GM_TLS13_SUITES.includes(s)) tls13Suites.push(s);
    else if (GM_TLCP_SUITES.includes(s)) tlcpSuites.push(s);
    else {
      throw new ConfigError(
        `${o.at("cipher_suites")}[${i}]`,
        `${JSON.stringify(s)} is not a GM suite (${[...GM_TLS13_SUITES, ...GM_TLCP_SUITES].join(", ")})`,
      );
    }
  });
  if (suites.length === 0) {
    tls13Suites.push(...GM_TLS13_SUITES);
    tlcpSuites.push(...GM_TLCP_SUITES);
  }
  const alpn = o.strs("alpn_protocols");
  const sniRaw = o.str("sni");
  if (side === "server" && sniRaw !== undefined) throw new ConfigError(o.at("sni"), "applies to clients only");
  const kx = o.enumOf("tlcp_client_key_exchange", ["LENGTH_PREFIXED", "BARE"] as const);
  if (side === "server" && kx !== undefined) {
    throw new ConfigError(o.at("tlcp_client_key_exchange"), "applies to clients only (a server accepts both)");
  }
  const profile = o.enumOf("tlcp_peer_profile", ["STANDARD", "GMSSL"] as const);
  if (side === "server" && profile !== undefined) {
    throw new ConfigError(
      o.at("tlcp_peer_profile"),
      "applies to clients only (a server accepts both kinds of TLCP client)",
    );
  }
  const tlcpPeerProfile = profile ?? "STANDARD";
  for (const v of versions) {
    const at = o.at("versions");
    if (!engines[v]) {
      throw new ConfigError(at, `${v} is not available in this build (its engine is missing from lib/tls/engine)`);
    }
    if (v === "TLSv1.3" && side === "server" && !certificate) {
      throw new ConfigError(o.at("certificate"), "is required for TLSv1.3 on a server");
    }
    if (v === "TLSv1.3" && tls13Suites.length === 0) {
      throw new ConfigError(o.at("cipher_suites"), "lists no TLS 1.3 suite but TLSv1.3 is enabled");
    }
    if (v === "TLCP" && side === "server" && (!signCertificate || !encCertificate)) {
      throw new ConfigError(
        o.at(signCertificate ? "enc_certificate" : "sign_certificate"),
        "is required for TLCP on a server",
      );
    }
    if (v === "TLCP" && tlcpSuites.length === 0) {
      throw new ConfigError(o.at("cipher_suites"), "lists no TLCP suite but TLCP is enabled");
    }
  }
  if (side === "client" && (signCertificate === undefined) !== (encCertificate === undefined)) {
    throw new ConfigError(o.path, "sign_certificate and enc_certificate go together");
  }
  const serverOnly = ["session_ticket_keys", "disable_stateless_session_resumption"];
  serverOnly.push("disable_stateful_session_resumption", "session_timeout");
  for (const k of side === "client" ? serverOnly : ["max_session_keys"]) {
    if (o.has(k)) throw new ConfigError(o.at(k), `applies to ${side === "client" ? "servers" : "clients"} only`);
  }
  const resumption = side === "server" ? parseServerResumption(o) : undefined;
  const maxSessionKeys = side === "client" ? parseMaxSessionKeys(o) : undefined;
  o.done();
  // With several event loops the TLCP session cache is made now and shared under the context's config path, so
  // that each loop has it (and takes the others' sessions) before its first connection.
  let tlcpSessions: TlcpSessionCache | undefined;
  if (resumption?.stateful && versions.includes("TLCP") && eventLoops() > 1) {
    tlcpSessions = new TlcpSessionCache({ lifetimeMs: resumption.sessionTimeout * 1000 });
    tlcpSessions.shareAs(o.path);
  }
  return {
    side,
    versions,
    certificate,
    signCertificate,
    encCertificate,
    roots,
    requireClientCertificate,
    tls13Suites,
    tlcpSuites,
    alpn,
    sni: sniRaw === "" ? undefined : sniRaw,
    tlcpPeerProfile,
    tlcpClientKeyExchange: kx ??
      (TLCP_PEER_PROFILES[tlcpPeerProfile === "GMSSL" ? "gmssl" : "standard"].ecdheKeyExchangeEncoding === "bare"
        ? "BARE"
        : "LENGTH_PREFIXED"),
    engineState: { tls13Clients: new Map(), tls13Credentials: new Map(), ...(tlcpSessions ? { tlcpSessions } : {}) },
    ...(resumption
      ? {
        ticketKeys: resumption.ticketKeys,
        statefulResumption: resumption.stateful,
        sessionTimeout: resumption.sessionTimeout,
      }
      : {}),
    ...(maxSessionKeys !== undefined ? { maxSessionKeys } : {}),
  };
}

/** Reads bytes until a ClientHello parsed (for a gm chain reached without the tls_inspector). */
function peekHello(
  transport: NetConnection,
  timeoutMs: number,
): Promise<{ hello: ClientHelloInfo | undefined; bytes: Uint8Array }> {
  return new Promise((resolve, reject) => {
    let buf = new Uint8Array(0);
    const timer = schedule(timeoutMs, () => {
      transport.close({ reason: "tls: ClientHello timeout" });
      reject(new TlsHandshakeError("timeout", `tls: no ClientHello after ${timeoutMs} ms`));
    });
    const done = (hello: ClientHelloInfo | undefined) => {
      timer.cancel();
      transport.readDisable(true);
      resolve({ hello, bytes: buf });
    };
    transport.setHandler({
      onData(d) {
        const next = new Uint8Array(buf.length + d.length);
        next.set(buf);
        next.set(d, buf.length);
        buf = next;
        const r = parseClientHello(buf);
        if (r.kind === "hello") done(r.hello);
        else if (r.kind === "not-tls") done(undefined);
      },
      onEof() {
        timer.cancel();
        transport.close({ reason: "tls: closed before ClientHello" });
        reject(new TlsHandshakeError("closed", "tls: peer closed before the ClientHello"));
      },
      onClose() {
        timer.cancel();
        reject(new TlsHandshakeError("closed", "tls: peer closed before the ClientHello"));
      },
    });
    transport.start();
  });
}

/** Builds the gm provider over an engine table (tests pass fakes). */
export function createGmProvider(engines: GmEngines = builtinGmEngines): TlsProvider<GmContext, GmContext> {
  return {
    name: "gm",
    async accept(transport, ctx, options: TlsAcceptOptions & { clientHello?: ClientHelloInfo }) {
      let initial = options.initial;
      let hello = options.clientHello;
      let version: GmVersion = ctx.versions[0]!;
      if (ctx.versions.length > 1) {
        if (!hello) {
          const peeked = await peekHello(transport, options.timeoutMs);
          hello = peeked.hello;
          initial = initial && initial.length > 0 ? concat(initial, peeked.bytes) : peeked.bytes;
          transport.readDisable(false);
        }
        const asked = hello ? gmVersionOf(hello) : undefined;
        if (asked && ctx.versions.includes(asked)) version = asked;
      }
      const factory = engines[version];
      if (!factory) throw new TlsHandshakeError("handshake", `tls: no ${version} engine`);
      return await runEngineHandshake(
        transport,
        (callbacks) => factory({ role: "server", context: ctx, callbacks }),
        { timeoutMs: options.timeoutMs, initial, highWatermark: options.highWatermark },
      ) as SecureConnection;
    },
    async connect(transport, ctx, options: TlsConnectOptions) {
      const version = ctx.versions[0]!;
      const factory = engines[version];
      if (!factory) throw new TlsHandshakeError("handshake", `tls: no ${version} engine`);
      const serverName = ctx.sni ?? options.hostname;
      return await runEngineHandshake(
        transport,
        (callbacks) => factory({ role: "client", context: ctx, callbacks, serverName }),
        { timeoutMs: options.timeoutMs, highWatermark: options.highWatermark, sni: serverName, client: true },
      ) as SecureConnection;
    },
  };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The gm provider over the built-in engines. */
export const gmProvider: TlsProvider<GmContext, GmContext> = createGmProvider();

/**
 * The gm provider as a registered factory over an engine table (the built-in engines by default; tests pass fakes):
 * `GmTlsContext` under both of its `@type` URLs, on listeners and clusters.
 */
export function createGmTlsProviderFactory(
  engines: GmEngines = builtinGmEngines,
): TlsProviderFactory<GmContext, GmContext> {
  const provider = engines === builtinGmEngines ? gmProvider : createGmProvider(engines);
  const parse = (tc: ObjReader, side: "server" | "client"): GmContext => {
    const context = parseGmTlsContext(tc, side, engines);
    prepareSm4Aead();
    return context;
  };
  return {
    name: "gm",
    configTypes: [GM_TLS_CONTEXT_TYPE, GM_TLS_CONTEXT_TYPE_FERRY],
    serverConfigTypes: [GM_TLS_CONTEXT_TYPE, GM_TLS_CONTEXT_TYPE_FERRY],
    clientConfigTypes: [GM_TLS_CONTEXT_TYPE, GM_TLS_CONTEXT_TYPE_FERRY],
    provider,
    parseServer: (tc) => parse(tc, "server"),
    parseClient: (tc) => parse(tc, "client"),
  };
}

/** The gm provider factory over the built-in engines. */
export const gmTlsProviderFactory: TlsProviderFactory<GmContext, GmContext> = createGmTlsProviderFactory();
