/**
 * Ferry's TLS 1.3 engine (RFC 8446, with the RFC 8998 ShangMi suites): sans-I/O server and client
 * {@link TlsEngine}s for the `gm` provider.
 *
 * - Suites: `TLS_SM4_GCM_SM3`, `TLS_SM4_CCM_SM3`, `TLS_AES_128_GCM_SHA256`, `TLS_AES_256_GCM_SHA384`,
 *   `TLS_CHACHA20_POLY1305_SHA256`.
 * - Groups: `curveSM2`, `x25519`, `secp256r1`. Signatures: `sm2sig_sm3`, `ecdsa_secp256r1_sha256`.
 * - Resumption with stateless session tickets (Envoy's 80-byte `session_ticket_keys`) and `psk_dhe_ke`; no 0-RTT
 *   (offered early data is skipped by the server).
 *
 * @module
 */
export type { TlsEngine } from "../../../api/tls.ts";
export { createTls13Server, createTls13ServerFactory } from "./server.ts";
export type {
  Tls13CertificateQuery,
  Tls13ClientAuth,
  Tls13ServerOptions,
  Tls13SessionTicketOptions,
} from "./server.ts";
export { SESSION_TICKET_KEY_LENGTH, SessionTicketKeys, Tls13SessionCache } from "./session_ticket.ts";
export type { Tls13ClientSession, Tls13SessionCacheOptions } from "./session_ticket.ts";
export { createTls13Client, createTls13ClientFactory } from "./client.ts";
export type { Tls13ClientOptions } from "./client.ts";
export { loadTls13Credential, RFC8998_SM2_ID, SM2_DEFAULT_SIGNER_ID, TLS13_SIGNATURE_SCHEMES } from "./credentials.ts";
export type { Tls13Credential, Tls13SignatureSchemeName } from "./credentials.ts";
export { DEFAULT_TLS13_CIPHER_SUITES, TLS13_CIPHER_SUITES } from "./suites.ts";
export type { Tls13CipherSuite, Tls13CipherSuiteName } from "./suites.ts";
export { DEFAULT_TLS13_GROUPS, TLS13_GROUPS } from "./groups.ts";
export type { Tls13GroupName } from "./groups.ts";
