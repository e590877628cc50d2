/**
 * Adapters from a parsed {@link GmContext} to the engines in `lib/tls/engine/`: one {@link GmEngineFactory} per
 * GM version. The gm provider only sees this table, so a version whose engine is not in the build is a config
 * error and nothing else changes.
 *
 * @module
 */
import type { TlsEngine } from "../api/tls.ts";
import {
  createTlcpClient,
  createTlcpServer,
  type TlcpCipherSuite,
  type TlcpCredentials,
  TlcpSessionCache,
} from "./engine/tlcp/mod.ts";
import type { GmContext, GmEngineFactory, GmEngineInit, GmEngines, GmKeyPair } from "./gm.ts";

function tlcpCredentials(sign: GmKeyPair, enc: GmKeyPair): TlcpCredentials {
  return {
    signCertificate: sign.chain[0]!.der,
    signKey: sign.key,
    encCertificate: enc.chain[0]!.der,
    encKey: enc.key,
    chain: sign.chain.slice(1).map((c) => c.der),
  };
}

/** One session cache per server context (a listener chain), so TLCP session IDs resume on that chain. */
const sessionCaches = new WeakMap<GmContext, TlcpSessionCache>();

/** TLCP (GB/T 38636) over `lib/tls/engine/tlcp`. */
export const tlcpEngineFactory: GmEngineFactory = (init: GmEngineInit): TlsEngine => {
  const ctx = init.context;
  const cipherSuites = ctx.tlcpSuites as readonly TlcpCipherSuite[];
  const alpnProtocols = ctx.alpn;
  const creds = ctx.signCertificate && ctx.encCertificate
    ? tlcpCredentials(ctx.signCertificate, ctx.encCertificate)
    : undefined;
  if (init.role === "server") {
    let cache = sessionCaches.get(ctx);
    if (!cache) {
      cache = new TlcpSessionCache();
      sessionCaches.set(ctx, cache);
    }
    return createTlcpServer({
      credentials: creds!,
      cipherSuites,
      alpnProtocols,
      clientAuth: ctx.requireClientCertificate ? "require" : ctx.roots.length > 0 ? "request" : "none",
      ...(ctx.roots.length > 0 ? { clientCa: ctx.roots } : {}),
      sessionCache: cache,
    }, init.callbacks);
  }
  return createTlcpClient({
    cipherSuites,
    alpnProtocols,
    ...(ctx.roots.length > 0 ? { ca: ctx.roots } : { verifyServer: false }),
    ...(init.serverName !== undefined ? { serverName: init.serverName } : {}),
    ...(creds ? { credentials: creds } : {}),
    ecdheKeyExchangeEncoding: ctx.tlcpClientKeyExchange === "BARE" ? "bare" : "length-prefixed",
  }, init.callbacks);
};

/** The engines of this build, by version. */
export const builtinGmEngines: GmEngines = {
  TLCP: tlcpEngineFactory,
};
