/**
 * The types shared by the gm provider (`gm.ts`) and its engine adapters (`gm_engines.ts`): the parsed context and
 * the engine table. A separate file so that the adapters do not import the provider that imports them.
 *
 * @module
 */
import type { TlsEngine, TlsEngineCallbacks } from "../api/tls.ts";
import type { Certificate } from "../crypto/x509.ts";
import type { Sm2PrivateKey } from "../crypto/sm2.ts";
import type { TlcpServerOptions, TlcpSession, TlcpSessionCache } from "./engine/tlcp/mod.ts";
import type { SessionTicketKeys, Tls13Credential, Tls13SessionCache } from "./engine/tls13/mod.ts";

/** The GM protocol versions. */
export type GmVersion = "TLSv1.3" | "TLCP";

/** A certificate chain and its SM2 key, loaded. */
export interface GmKeyPair {
  /** Leaf first. */
  readonly chain: readonly Certificate[];
  readonly chainPem: string;
  readonly key: Sm2PrivateKey;
  /** The key as given (PEM), for engines that load their own credentials. */
  readonly keyPem: string;
}

/** A parsed `GmTlsContext` for one side. */
export interface GmContext {
  readonly side: "server" | "client";
  readonly versions: readonly GmVersion[];
  /** TLS 1.3-SM certificate. */
  readonly certificate: GmKeyPair | undefined;
  /** TLCP signing pair. */
  readonly signCertificate: GmKeyPair | undefined;
  /** TLCP encryption pair. */
  readonly encCertificate: GmKeyPair | undefined;
  /** Trust anchors for the peer; empty = the peer is not verified (client) / not asked (server). */
  readonly roots: readonly Certificate[];
  readonly requireClientCertificate: boolean;
  /** TLS 1.3 suites in preference order. */
  readonly tls13Suites: readonly string[];
  /** TLCP suites in preference order. */
  readonly tlcpSuites: readonly string[];
  readonly alpn: readonly string[];
  /** Client: SNI (and the name the server certificate must carry when `roots` is set). */
  readonly sni: string | undefined;
  /**
   * Client: the kind of TLCP server, which sets the TLCP client's interop switches (`TLCP_PEER_PROFILES` in
   * `engine/tlcp`).
   */
  readonly tlcpPeerProfile: GmTlcpPeerProfile;
  /** Client: TLCP ECDHE ClientKeyExchange encoding (the profile's unless `tlcp_client_key_exchange` is set). */
  readonly tlcpClientKeyExchange: "LENGTH_PREFIXED" | "BARE";
  /** Server: TLS 1.3 ticket keys (`session_ticket_keys`, or a random key); undefined = no stateless resumption. */
  readonly ticketKeys?: SessionTicketKeys | undefined;
  /** Server: TLCP session-ID resumption (off with `disable_stateful_session_resumption`). Default true. */
  readonly statefulResumption?: boolean | undefined;
  /** Server: session lifetime in seconds (`session_timeout`, default 7200). */
  readonly sessionTimeout?: number | undefined;
  /** Client: TLS 1.3 tickets kept per server (`max_session_keys`, default 1; 0 = no resumption). */
  readonly maxSessionKeys?: number | undefined;
  /**
   * Config-time state the engine adapters build once for this context and share among its handshakes (DESIGN §4:
   * no module-level caches). A new context (a reparsed listener, a rotated secret) starts empty, so nothing built
   * from old certificates outlives them.
   */
  readonly engineState: GmEngineState;
}

/** A TLS 1.3 engine over its callbacks, resolved from a context once. */
export type GmTls13EngineFactory = (callbacks: TlsEngineCallbacks) => TlsEngine;

/**
 * What `gm_engines.ts` keeps per {@link GmContext}: the TLCP session cache (so session IDs resume on this chain),
 * the resolved TLS 1.3 server factory, client factories by server name, and loaded TLS 1.3 credentials.
 */
export interface GmEngineState {
  tlcpSessions?: TlcpSessionCache;
  /** Server: the TLCP engine options, resolved on the first connection (credentials, suites, the session cache). */
  tlcpServer?: TlcpServerOptions;
  tls13Server?: GmTls13EngineFactory;
  /** Client: the TLS 1.3 tickets of this context's upstream connections, by server name. */
  tls13Sessions?: Tls13SessionCache;
  /** Client: the last TLCP session per server name, offered for resumption. */
  tlcpClientSessions?: Map<string, TlcpSession>;
  readonly tls13Clients: Map<string, GmTls13EngineFactory>;
  readonly tls13Credentials: Map<GmKeyPair, Tls13Credential>;
}

/**
 * `tlcp_peer_profile`: what the TLCP server at the other end expects from a client. `STANDARD` (default): GB/T 38636
 * as Tongsuo implements it: bare ECDHE ClientKeyExchange, CertificateVerify over SM3 of the handshake messages, the
 * signing and encryption certificates in ECC suites. `GMSSL`: GmSSL 3: the ClientKeyExchange inside a 2-byte
 * length, CertificateVerify over the handshake messages themselves, the signing certificate alone in ECC suites.
 */
export type GmTlcpPeerProfile = "STANDARD" | "GMSSL";

/** What an engine adapter receives. */
export interface GmEngineInit {
  readonly role: "server" | "client";
  readonly context: GmContext;
  readonly callbacks: TlsEngineCallbacks;
  /** Client: the server name to send (context `sni` or the upstream host). */
  readonly serverName?: string | undefined;
}

/** Builds an engine of one GM version (an adapter over a `lib/tls/engine/*` factory). */
export type GmEngineFactory = (init: GmEngineInit) => TlsEngine;

/** The engines by version. */
export type GmEngines = Readonly<Partial<Record<GmVersion, GmEngineFactory>>>;
