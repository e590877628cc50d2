/**
 * TLCP 1.1 (GB/T 38636-2020) in TypeScript: a sans-I/O server and client engine with the four SM2/SM3/SM4 suites,
 * the record layer, the SM3 PRF and a session cache.
 *
 * @module
 */
export {
  createTlcpClient,
  createTlcpServer,
  TLCP_PEER_PROFILES,
  type TlcpClientOptions,
  type TlcpCommonOptions,
  type TlcpCredentials,
  tlcpCredentialsFromPem,
  TlcpEngine,
  type TlcpPeerProfile,
  type TlcpPeerSwitches,
  type TlcpPemCredentials,
  type TlcpServerOptions,
} from "./engine.ts";
export { type TlcpSession, TlcpSessionCache, type TlcpSessionCacheOptions } from "./session_cache.ts";
export {
  TLCP_DEFAULT_SUITES,
  TLCP_SUITES,
  TLCP_VERSION,
  type TlcpCipherSuite,
  tlcpSuiteByCode,
  type TlcpSuiteInfo,
} from "./suites.ts";
export { tlcpFinished, tlcpKeyBlock, tlcpMasterSecret, tlcpPrf } from "./prf.ts";
