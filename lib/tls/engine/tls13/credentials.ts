/**
 * TLS 1.3 signature schemes and certificate credentials: `sm2sig_sm3` (RFC 8998, on the project's SM2) and
 * `ecdsa_secp256r1_sha256` (on `node:crypto`), the CertificateVerify content (RFC 8446 §4.4.3), and a
 * {@link Tls13Credential} — a certificate chain with its private key, loaded once from PEM and shared by every
 * connection.
 *
 * **The SM2 signer ID.** RFC 8998 §3.2.1 says that when `sm2sig_sm3` signs a TLS 1.3 CertificateVerify, the SM2
 * distinguishing identifier is the string `TLSv1.3+GM+Cipher+Suite` (OpenSSL does so); some peers (e.g. GmSSL 3)
 * use the SM2 default `1234567812345678` instead. Ferry signs with {@link RFC8998_SM2_ID} unless configured
 * otherwise and, by default, accepts a peer signature under either ID.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import {
  type Certificate,
  certificateSm2PublicKey,
  decodeEcPrivateKey,
  parseCertificate,
  pemDecodeAll,
  SM2_DEFAULT_ID,
  Sm2PrivateKey,
} from "../../../crypto/mod.ts";
import { fatal } from "./_codec.ts";

/** Names of the supported signature schemes. */
export type Tls13SignatureSchemeName = "ecdsa_secp256r1_sha256" | "sm2sig_sm3";

/** Signature scheme code points. */
export const TLS13_SIGNATURE_SCHEMES: Readonly<Record<Tls13SignatureSchemeName, number>> = {
  ecdsa_secp256r1_sha256: 0x0403,
  sm2sig_sm3: 0x0708,
};

/** The name of scheme `id`, if supported. */
export function signatureSchemeName(id: number): Tls13SignatureSchemeName | undefined {
  for (const [name, v] of Object.entries(TLS13_SIGNATURE_SCHEMES)) {
    if (v === id) return name as Tls13SignatureSchemeName;
  }
  return undefined;
}

/** The SM2 distinguishing ID RFC 8998 §3.2.1 prescribes for TLS 1.3 CertificateVerify. */
export const RFC8998_SM2_ID: Uint8Array = new TextEncoder().encode("TLSv1.3+GM+Cipher+Suite");

/** The SM2 default ID (GB/T 32918), which some TLS 1.3 GM peers use in CertificateVerify. */
export const SM2_DEFAULT_SIGNER_ID: Uint8Array = SM2_DEFAULT_ID;

const encoder = new TextEncoder();
const SERVER_CONTEXT = encoder.encode("TLS 1.3, server CertificateVerify");
const CLIENT_CONTEXT = encoder.encode("TLS 1.3, client CertificateVerify");

/** The signed content of a CertificateVerify: 64 spaces, the context string, a zero byte, the transcript hash. */
export function certificateVerifyContent(server: boolean, transcriptHash: Uint8Array): Uint8Array {
  // 64 spaces, the context string, a zero byte, the hash: one array (four were built and concatenated).
  const context = server ? SERVER_CONTEXT : CLIENT_CONTEXT;
  const out = new Uint8Array(64 + context.length + 1 + transcriptHash.length);
  out.fill(0x20, 0, 64);
  out.set(context, 64);
  out.set(transcriptHash, 64 + context.length + 1);
  return out;
}

/** A certificate chain (leaf first) with the leaf's private key. Build with {@link loadTls13Credential}. */
export interface Tls13Credential {
  /** The chain as DER, leaf first. */
  readonly chain: readonly Uint8Array[];
  /** The parsed leaf. */
  readonly leaf: Certificate;
  /** The one scheme this key signs with. */
  readonly scheme: Tls13SignatureSchemeName;
  /** Signs CertificateVerify content. `sm2Id` applies to `sm2sig_sm3`. */
  sign(content: Uint8Array, sm2Id: Uint8Array): Uint8Array;
}

function b64url(b: Uint8Array): string {
  return Buffer.from(b).toString("base64url");
}

function p256Jwk(point: Uint8Array): { kty: string; crv: string; x: string; y: string } {
  if (point.length !== 65 || point[0] !== 4) throw new RangeError("tls13: P-256 point must be uncompressed");
  return { kty: "EC", crv: "P-256", x: b64url(point.subarray(1, 33)), y: b64url(point.subarray(33)) };
}

function toBytes(b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Loads a credential from a PEM certificate chain (leaf first) and a PEM private key (SM2 or P-256, PKCS#8 or
 * SEC1). Throws a `RangeError` (or the PEM/DER parser's error) when the files are unusable or the key does not
 * match the leaf. Load once per config and share it between connections.
 *
 * @param certChainPem one or more `CERTIFICATE` blocks, leaf first
 * @param privateKeyPem the leaf's private key
 */
export function loadTls13Credential(certChainPem: string, privateKeyPem: string): Tls13Credential {
  const chain = pemDecodeAll(certChainPem).filter((b) => b.label === "CERTIFICATE").map((b) => b.der);
  if (chain.length === 0) throw new RangeError("tls13: credential: no CERTIFICATE block in the chain");
  const leaf = parseCertificate(chain[0]!);
  const data = decodeEcPrivateKey(privateKeyPem);
  if (data.curve !== leaf.publicKey.curve) {
    throw new RangeError(`tls13: credential: ${data.curve} key does not match the ${leaf.publicKey.curve} leaf`);
  }
  if (data.curve === "sm2") {
    const key = Sm2PrivateKey.fromBytes(data.d);
    if (!sameBytes(key.publicKey.toBytes(), leaf.publicKey.point)) {
      throw new RangeError(`tls13: credential: private key does not match certificate "${leaf.subject}"`);
    }
    return {
      chain,
      leaf,
      scheme: "sm2sig_sm3",
      sign: (content, sm2Id) => key.sign(content, { id: sm2Id }),
    };
  }
  const jwk = p256Jwk(leaf.publicKey.point);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: { ...jwk, d: b64url(data.d) }, format: "jwk" });
  } catch (e) {
    throw new RangeError(`tls13: credential: private key does not match certificate "${leaf.subject}"`, {
      cause: e,
    });
  }
  // A JWK import does not check d against (x, y): sign and verify once to be sure.
  const probe = new Uint8Array(32);
  const sig = sign("sha256", probe, { key, dsaEncoding: "der" });
  if (!verify("sha256", probe, { key: createPublicKey({ key: jwk, format: "jwk" }), dsaEncoding: "der" }, sig)) {
    throw new RangeError(`tls13: credential: private key does not match certificate "${leaf.subject}"`);
  }
  return {
    chain,
    leaf,
    scheme: "ecdsa_secp256r1_sha256",
    sign: (content) => toBytes(sign("sha256", content, { key, dsaEncoding: "der" })),
  };
}

/** The scheme a peer certificate's key can sign with. */
export function schemeForCertificate(cert: Certificate): Tls13SignatureSchemeName {
  return cert.publicKey.curve === "sm2" ? "sm2sig_sm3" : "ecdsa_secp256r1_sha256";
}

const publicKeys = new WeakMap<Certificate, KeyObject>();

/**
 * Verifies a peer's CertificateVerify signature; a failure is `decrypt_error`, a scheme that does not fit the
 * certificate key `illegal_parameter`. SM2 signatures are tried with each ID in `sm2Ids` in turn.
 */
export function verifyCertificateVerify(
  cert: Certificate,
  scheme: number,
  content: Uint8Array,
  signature: Uint8Array,
  sm2Ids: readonly Uint8Array[],
): void {
  const name = signatureSchemeName(scheme);
  if (name === undefined || name !== schemeForCertificate(cert)) {
    fatal("illegal_parameter", `CertificateVerify scheme 0x${scheme.toString(16)} does not fit the certificate key`);
  }
  if (name === "sm2sig_sm3") {
    let key;
    try {
      key = certificateSm2PublicKey(cert);
    } catch (e) {
      fatal("bad_certificate", "peer SM2 certificate key is invalid", e);
    }
    for (const id of sm2Ids) {
      let ok = false;
      try {
        ok = key.verify(content, signature, { id });
      } catch (e) {
        fatal("decrypt_error", "CertificateVerify signature is malformed", e);
      }
      if (ok) return;
    }
    fatal("decrypt_error", "CertificateVerify signature does not verify");
  }
  let key = publicKeys.get(cert);
  if (!key) {
    try {
      key = createPublicKey({ key: p256Jwk(cert.publicKey.point), format: "jwk" });
    } catch (e) {
      fatal("bad_certificate", "peer P-256 certificate key is invalid", e);
    }
    publicKeys.set(cert, key);
  }
  let ok = false;
  try {
    ok = verify("sha256", content, { key, dsaEncoding: "der" }, signature);
  } catch (e) {
    fatal("decrypt_error", "CertificateVerify signature is malformed", e);
  }
  if (!ok) fatal("decrypt_error", "CertificateVerify signature does not verify");
}
