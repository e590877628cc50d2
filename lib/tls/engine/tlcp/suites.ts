/**
 * The four TLCP 1.1 cipher suites of GB/T 38636-2020 that Ferry speaks, their code points and shapes.
 *
 * @module
 */

/** TLCP suite names as GB/T 38636 spells them. */
export type TlcpCipherSuite = "ECC_SM4_CBC_SM3" | "ECC_SM4_GCM_SM3" | "ECDHE_SM4_CBC_SM3" | "ECDHE_SM4_GCM_SM3";

/** What a suite is made of. */
export interface TlcpSuiteInfo {
  readonly name: TlcpCipherSuite;
  /** The code point on the wire. */
  readonly code: number;
  /** Key exchange: SM2 encryption of the premaster (`ECC`) or the SM2 key-exchange protocol (`ECDHE`). */
  readonly kx: "ECC" | "ECDHE";
  /** Record protection: SM4-CBC with HMAC-SM3, or SM4-GCM. */
  readonly mode: "cbc" | "gcm";
}

/** The TLCP protocol version, 0x0101. */
export const TLCP_VERSION = 0x0101;

/** The suites by name. */
export const TLCP_SUITES: Readonly<Record<TlcpCipherSuite, TlcpSuiteInfo>> = {
  ECC_SM4_CBC_SM3: { name: "ECC_SM4_CBC_SM3", code: 0xe013, kx: "ECC", mode: "cbc" },
  ECC_SM4_GCM_SM3: { name: "ECC_SM4_GCM_SM3", code: 0xe053, kx: "ECC", mode: "gcm" },
  ECDHE_SM4_CBC_SM3: { name: "ECDHE_SM4_CBC_SM3", code: 0xe011, kx: "ECDHE", mode: "cbc" },
  ECDHE_SM4_GCM_SM3: { name: "ECDHE_SM4_GCM_SM3", code: 0xe051, kx: "ECDHE", mode: "gcm" },
};

/**
 * The default preference order: GCM before CBC, ECC before ECDHE (ECDHE needs the client's double certificates,
 * which many clients that offer it do not have).
 */
export const TLCP_DEFAULT_SUITES: readonly TlcpCipherSuite[] = [
  "ECC_SM4_GCM_SM3",
  "ECC_SM4_CBC_SM3",
  "ECDHE_SM4_GCM_SM3",
  "ECDHE_SM4_CBC_SM3",
];

/** The suite for a code point, if it is one of ours. */
export function tlcpSuiteByCode(code: number): TlcpSuiteInfo | undefined {
  for (const s of Object.values(TLCP_SUITES)) if (s.code === code) return s;
  return undefined;
}
