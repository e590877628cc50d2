/**
 * Adapters from a parsed {@link GmContext} to the engines in `lib/tls/engine/`: one {@link GmEngineFactory} per
 * GM version. The gm provider only sees this table, so a version whose engine is not in the build is a config
 * error and nothing else changes.
 *
 * @module
 */
import type { TlsEngine, TlsHandshakeInfo } from "../api/tls.ts";
import {
  createTlcpClient,
  createTlcpServer,
  type TlcpCipherSuite,
  type TlcpCredentials,
  TlcpSessionCache,
} from "./engine/tlcp/mod.ts";
import {
  createTls13ClientFactory,
  createTls13ServerFactory,
  loadTls13Credential,
  type Tls13CipherSuiteName,
  type Tls13Credential,
  Tls13SessionCache,
} from "./engine/tls13/mod.ts";
import type { GmContext, GmEngineFactory, GmEngineInit, GmEngines, GmKeyPair } from "./_gm_types.ts";

function tlcpCredentials(sign: GmKeyPair, enc: GmKeyPair): TlcpCredentials {
  return {
    signCertificate: sign.chain[0]!.der,
    signKey: sign.key,
    encCertificate: enc.chain[0]!.der,
    encKey: enc.key,
    chain: sign.chain.slice(1).map((c) => c.der),
  };
}

/** TLCP (GB/T 38636) over `lib/tls/engine/tlcp`. */
export const tlcpEngineFactory: GmEngineFactory = (init: GmEngineInit): TlsEngine => {
  const ctx = init.context;
  const cipherSuites = ctx.tlcpSuites as readonly TlcpCipherSuite[];
  const alpnProtocols = ctx.alpn;
  const creds = () =>
    ctx.signCertificate && ctx.encCertificate ? tlcpCredentials(ctx.signCertificate, ctx.encCertificate) : undefined;
  if (init.role === "server") {
    // Resolved once per server context (a listener chain). One session cache per context, so TLCP session IDs
    // resume on that chain; none with disable_stateful_session_resumption.
    let options = ctx.engineState.tlcpServer;
    if (!options) {
      const cache = ctx.statefulResumption === false
        ? undefined
        : ctx.engineState.tlcpSessions ??= new TlcpSessionCache({ lifetimeMs: (ctx.sessionTimeout ?? 7200) * 1000 });
      options = ctx.engineState.tlcpServer = {
        credentials: creds()!,
        cipherSuites,
        alpnProtocols,
        clientAuth: ctx.requireClientCertificate ? "require" : ctx.roots.length > 0 ? "request" : "none",
        ...(ctx.roots.length > 0 ? { clientCa: ctx.roots } : {}),
        ...(cache ? { sessionCache: cache } : {}),
      };
    }
    return createTlcpServer(options, init.callbacks);
  }
  // Client sessions by server name (max_session_keys > 0): the last one established is offered next time.
  const sessions = (ctx.maxSessionKeys ?? 1) > 0 ? ctx.engineState.tlcpClientSessions ??= new Map() : undefined;
  const key = init.serverName ?? "";
  const session = sessions?.get(key);
  const callbacks = sessions
    ? {
      ...init.callbacks,
      onHandshake: (info: TlsHandshakeInfo) => {
        const s = engine.session;
        if (s) {
          sessions.delete(key);
          sessions.set(key, s);
          if (sessions.size > 64) sessions.delete(sessions.keys().next().value!);
        }
        init.callbacks.onHandshake(info);
      },
    }
    : init.callbacks;
  const engine = createTlcpClient({
    cipherSuites,
    alpnProtocols,
    ...(ctx.roots.length > 0 ? { ca: ctx.roots } : { verifyServer: false }),
    ...(init.serverName !== undefined ? { serverName: init.serverName } : {}),
    ...(ctx.signCertificate && ctx.encCertificate ? { credentials: creds()! } : {}),
    peerProfile: ctx.tlcpPeerProfile === "GMSSL" ? "gmssl" : "standard",
    ecdheKeyExchangeEncoding: ctx.tlcpClientKeyExchange === "BARE" ? "bare" : "length-prefixed",
    ...(session ? { session } : {}),
  }, callbacks);
  return engine;
};

function credential(ctx: GmContext, pair: GmKeyPair): Tls13Credential {
  const loaded = ctx.engineState.tls13Credentials;
  let c = loaded.get(pair);
  if (!c) {
    c = loadTls13Credential(pair.chainPem, pair.keyPem);
    loaded.set(pair, c);
  }
  return c;
}

/** TLS 1.3 with the RFC 8998 suites (curveSM2, sm2sig_sm3) over `lib/tls/engine/tls13`. */
export const tls13EngineFactory: GmEngineFactory = (init: GmEngineInit): TlsEngine => {
  const ctx = init.context;
  const cipherSuites = ctx.tls13Suites as readonly Tls13CipherSuiteName[];
  if (init.role === "server") {
    // Resolved once per server context; client factories once per (context, server name).
    let f = ctx.engineState.tls13Server;
    if (!f) {
      f = createTls13ServerFactory({
        certificates: [credential(ctx, ctx.certificate!)],
        cipherSuites,
        groups: ["curveSM2", "x25519", "secp256r1"],
        ...(ctx.alpn.length > 0 ? { alpn: ctx.alpn } : {}),
        clientAuth: ctx.requireClientCertificate ? "require" : ctx.roots.length > 0 ? "request" : "none",
        ...(ctx.roots.length > 0 ? { clientCaCertificates: ctx.roots } : {}),
        ...(ctx.ticketKeys ? { sessionTickets: { keys: ctx.ticketKeys, lifetime: ctx.sessionTimeout ?? 7200 } } : {}),
      });
      ctx.engineState.tls13Server = f;
    }
    return f(init.callbacks);
  }
  const byName = ctx.engineState.tls13Clients;
  const key = init.serverName ?? "";
  const keep = ctx.maxSessionKeys ?? 1;
  const sessions = keep > 0
    ? ctx.engineState.tls13Sessions ??= new Tls13SessionCache({ maxKeys: 64, ticketsPerKey: Math.min(keep, 64) })
    : undefined;
  let f = byName.get(key);
  if (!f) {
    f = createTls13ClientFactory({
      ...(init.serverName !== undefined ? { serverName: init.serverName } : {}),
      ...(ctx.roots.length > 0 ? { trustedCertificates: ctx.roots } : { verifyServerCertificate: false }),
      ...(ctx.alpn.length > 0 ? { alpn: ctx.alpn } : {}),
      cipherSuites,
      groups: ["curveSM2"],
      keyShares: ["curveSM2"],
      signatureSchemes: ["sm2sig_sm3"],
      ...(ctx.certificate ? { certificate: credential(ctx, ctx.certificate) } : {}),
      ...(sessions ? { sessionCache: sessions, sessionKey: key } : {}),
    });
    if (byName.size < 1024) byName.set(key, f);
  }
  return f(init.callbacks);
};

/** The engines of this build, by version. */
export const builtinGmEngines: GmEngines = {
  "TLSv1.3": tls13EngineFactory,
  TLCP: tlcpEngineFactory,
};
