/**
 * Issuing X.509 v3 certificates signed with SM2-with-SM3 or ECDSA-with-SHA256, for test PKIs (`ferry certs`).
 * The output verifies with `openssl verify` (SM2 with `-vfyopt distid:1234567812345678`).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { p256 } from "@noble/curves/nist.js";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate as AsnCertificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
} from "@peculiar/asn1-x509";
import { encodeOid } from "./asn1.ts";
import { type EcCurve, type EcPublicKeyData, OID, type P256KeyPair, pemEncode } from "./pem.ts";
import { SM2_DEFAULT_ID, type Sm2PrivateKey } from "./sm2.ts";
import { type Certificate, type KeyUsageName, parseCertificate } from "./x509.ts";

/** Something that signs TBSCertificate bytes: its curve, public point and a DER-signature function. */
export interface CertificateSigner {
  /** The signing key's curve; decides the signature algorithm. */
  readonly curve: EcCurve;
  /** The signing key's public point (for the authority key identifier). */
  readonly publicKey: Uint8Array;
  /** Returns the DER signature over `tbs`. */
  sign(tbs: Uint8Array): Uint8Array;
}

/**
 * A signer for SM2-with-SM3 certificate signatures (Z_A with `id`, default `1234567812345678`).
 *
 * @param key the issuer's private key
 * @param id the signer ID
 */
export function sm2CertificateSigner(key: Sm2PrivateKey, id: Uint8Array = SM2_DEFAULT_ID): CertificateSigner {
  return { curve: "sm2", publicKey: key.publicKey.toBytes(), sign: (tbs) => key.sign(tbs, { id }) };
}

/**
 * A signer for ECDSA-with-SHA256 certificate signatures.
 *
 * @param key the issuer's P-256 key pair
 */
export function p256CertificateSigner(key: P256KeyPair): CertificateSigner {
  return { curve: "p256", publicKey: key.publicKey, sign: (tbs) => p256.sign(tbs, key.d, { format: "der" }) };
}

/** A distinguished name as ordered attribute pairs, e.g. `[["C", "CN"], ["O", "Ferry"], ["CN", "root"]]`. */
export type NameSpec = ReadonlyArray<readonly ["C" | "ST" | "L" | "O" | "OU" | "CN", string]>;

const ATTR_OIDS = { C: "2.5.4.6", ST: "2.5.4.8", L: "2.5.4.7", O: "2.5.4.10", OU: "2.5.4.11", CN: "2.5.4.3" } as const;

/** Options for {@link issueCertificate}. */
export interface IssueCertificateOptions {
  /** The subject name. */
  subject: NameSpec;
  /** The subject's public key. */
  publicKey: EcPublicKeyData;
  /** The issuer's certificate; omit for a self-signed certificate (then `signer` must hold the subject key). */
  issuer?: Certificate;
  /** Signs with the issuer's key. */
  signer: CertificateSigner;
  /** Start of validity. */
  notBefore: Date;
  /** End of validity. */
  notAfter: Date;
  /** Serial number bytes; default 16 random bytes (positive). */
  serialNumber?: Uint8Array;
  /** Makes a CA certificate (critical basicConstraints CA:true), optionally with a path length. */
  ca?: boolean | { pathLength: number };
  /** Key-usage bits (critical extension); omitted when empty. */
  keyUsage?: readonly KeyUsageName[];
  /** Extended key-usage OIDs. */
  extKeyUsage?: readonly string[];
  /** SAN DNS names. */
  dnsNames?: readonly string[];
  /** SAN IP addresses. */
  ipAddresses?: readonly string[];
}

/** An issued certificate as DER, PEM and parsed. */
export interface IssuedCertificate {
  /** DER bytes. */
  readonly der: Uint8Array;
  /** PEM text. */
  readonly pem: string;
  /** The parsed certificate. */
  readonly certificate: Certificate;
}

function buildName(spec: NameSpec): Name {
  return new Name(spec.map(([k, v]) =>
    new RelativeDistinguishedName([
      new AttributeTypeAndValue({
        type: ATTR_OIDS[k],
        value: new AttributeValue(k === "C" ? { printableString: v } : { utf8String: v }),
      }),
    ])
  ));
}

function keyId(point: Uint8Array): Uint8Array {
  // RFC 5280 section 4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits.
  return new Uint8Array(createHash("sha1").update(point).digest());
}

function ext(id: string, critical: boolean, value: unknown): Extension {
  return new Extension({ extnID: id, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

function buf(b: Uint8Array): ArrayBuffer {
  return b.slice().buffer;
}

/** 16 random bytes as a positive serial number whose first byte is 0x01..0x7F (RFC 5280: positive, ≤ 20 octets). */
function randomSerialNumber(): Uint8Array {
  const s = crypto.getRandomValues(new Uint8Array(16));
  s[0] = (s[0]! & 0x7f) || 1;
  return s;
}

/**
 * The content octets of a DER INTEGER for the unsigned big-endian `serial`: minimal (no leading zero bytes unless
 * the next byte has its top bit set). A non-minimal INTEGER is invalid DER, and strict parsers (GmSSL) refuse the
 * certificate.
 */
function serialNumberBytes(serial: Uint8Array): Uint8Array {
  let i = 0;
  while (i < serial.length - 1 && serial[i] === 0) i++;
  const t = serial.subarray(i);
  return t[0]! & 0x80 ? new Uint8Array([0, ...t]) : t.slice();
}

/**
 * Builds, signs and returns an X.509 v3 certificate with subject and authority key identifiers.
 *
 * @param options subject, key, issuer, signer, validity and extensions
 */
export function issueCertificate(options: IssueCertificateOptions): IssuedCertificate {
  const serialBytes = serialNumberBytes(options.serialNumber ?? randomSerialNumber());
  const sigAlg = new AlgorithmIdentifier({
    algorithm: options.signer.curve === "sm2" ? OID.sm2WithSm3 : OID.ecdsaWithSha256,
  });
  const curveOid = options.publicKey.curve === "sm2" ? OID.sm2 : OID.p256;
  const spki = new SubjectPublicKeyInfo({
    algorithm: new AlgorithmIdentifier({ algorithm: OID.ecPublicKey, parameters: buf(encodeOid(curveOid)) }),
    subjectPublicKey: buf(options.publicKey.point),
  });
  const subject = buildName(options.subject);
  const issuerName = options.issuer ? AsnConvert.parse(options.issuer.subjectDer, Name) : subject;
  const authorityKeyId = options.issuer?.subjectKeyId ?? keyId(options.signer.publicKey);
  const extensions: Extension[] = [];
  if (options.ca) {
    const bc = new BasicConstraints({ cA: true });
    if (typeof options.ca === "object") bc.pathLenConstraint = options.ca.pathLength;
    extensions.push(ext(id_ce_basicConstraints, true, bc));
  }
  if (options.keyUsage && options.keyUsage.length > 0) {
    let flags = 0;
    for (const u of options.keyUsage) flags |= KeyUsageFlags[u === "crlSign" ? "cRLSign" : u];
    extensions.push(ext(id_ce_keyUsage, true, new KeyUsage(flags)));
  }
  if (options.extKeyUsage && options.extKeyUsage.length > 0) {
    extensions.push(ext(id_ce_extKeyUsage, false, new ExtendedKeyUsage([...options.extKeyUsage])));
  }
  const san = [
    ...(options.dnsNames ?? []).map((d) => new GeneralName({ dNSName: d })),
    ...(options.ipAddresses ?? []).map((ip) => new GeneralName({ iPAddress: ip })),
  ];
  if (san.length > 0) extensions.push(ext(id_ce_subjectAltName, false, new SubjectAlternativeName(san)));
  extensions.push(
    ext(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(buf(keyId(options.publicKey.point)))),
  );
  extensions.push(
    ext(
      id_ce_authorityKeyIdentifier,
      false,
      new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(buf(authorityKeyId)) }),
    ),
  );
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: buf(serialBytes),
    signature: sigAlg,
    issuer: issuerName,
    validity: new Validity({ notBefore: options.notBefore, notAfter: options.notAfter }),
    subject,
    subjectPublicKeyInfo: spki,
    extensions: new Extensions(extensions),
  });
  const tbsDer = new Uint8Array(AsnConvert.serialize(tbs));
  const signature = options.signer.sign(tbsDer);
  const cert = new AsnCertificate({
    tbsCertificate: tbs,
    signatureAlgorithm: sigAlg,
    signatureValue: buf(signature),
  });
  const der = new Uint8Array(AsnConvert.serialize(cert));
  return { der, pem: pemEncode("CERTIFICATE", der), certificate: parseCertificate(der) };
}
