/**
 * GM (ShangMi) cryptography for Ferry: SM3 with HMAC/HKDF/KDF, SM4 with ECB/CBC/CTR/GCM/CCM (TypeScript and
 * WebAssembly kernels), SM2 signatures, key exchange and encryption, PEM/PKCS#8 keys, X.509 parsing, chain
 * verification and issuing, and the `ferry certs` test-PKI generator. Everything is test-vectored and
 * cross-checked against OpenSSL; see each module for its measured speed.
 *
 * @module
 */
export * from "./sm3.ts";
export * from "./hmac.ts";
export * from "./hkdf.ts";
export * from "./sm4.ts";
export * from "./sm4_cbc.ts";
export * from "./sm4_ctr.ts";
export * from "./gcm.ts";
export * from "./ccm.ts";
export * from "./sm4_nonce.ts";
export * from "./sm4_aead.ts";
export { Sm4CbcWasm } from "./wasm/sm4_cbc_wasm.ts";
export { Sm4CcmWasm } from "./wasm/sm4_ccm_wasm.ts";
export { Sm4GcmWasm } from "./wasm/sm4_gcm_wasm.ts";
export { GhashSimd, Sm4Simd } from "./wasm/sm4_simd.ts";
export * from "./sm2.ts";
export * from "./asn1.ts";
export * from "./pem.ts";
export * from "./x509.ts";
export * from "./x509_issue.ts";
export { generateTestPki, runCertsCommand } from "./certs_command.ts";
export type { TestPkiFiles, TestPkiOptions } from "./certs_command.ts";
