/**
 * X.509 certificates: parsing, signature checks, and chain verification to a trusted root with validity dates,
 * basicConstraints, key usage (TLCP signing vs encryption certificates) and host-name matching (DNS names with
 * wildcards, IP addresses, CN when there is no SAN).
 *
 * Reading a certificate (names, SANs, validity, extensions) does not depend on its key: the subject public key
 * of any algorithm is kept as an opaque {@link PublicKeyInfo} with its algorithm OID. Signatures are checked
 * here for SM2-with-SM3 and ECDSA P-256 with SHA-256 (our own code, as the GM engines need), and through
 * `node:crypto` for the other algorithms standard TLS uses: RSA PKCS#1 v1.5 and RSASSA-PSS with SHA-256/384/512,
 * ECDSA with SHA-256/384/512 on P-256/P-384/P-521, Ed25519 and Ed448. SHA-1 signatures are refused, as rustls
 * refuses them.
 *
 * Every failure is a {@link CertificateError} whose `code` says what went wrong and whose message names the
 * certificate.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { constants as nodeCryptoConstants, createPublicKey, type KeyObject, verify as nodeVerify } from "node:crypto";
import { p256 } from "@noble/curves/nist.js";
import { AsnConvert } from "@peculiar/asn1-schema";
import {
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate as AsnCertificate,
  ExtendedKeyUsage,
  type Extension,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  KeyUsage,
  type KeyUsageType,
  type Name,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
} from "@peculiar/asn1-x509";
import { equalBytes } from "@noble/curves/utils.js";
import { decodeOid, decodeUnsignedInteger, DerError, expectElement, readElement, Tag } from "./asn1.ts";
import { OID, parsePublicKeyInfo, pemDecodeAll, type PublicKeyInfo, publicKeyName } from "./pem.ts";
import { SM2_DEFAULT_ID, Sm2PublicKey } from "./sm2.ts";

/** Why a certificate was rejected. */
export type CertificateErrorCode =
  | "malformed"
  | "expired"
  | "not-yet-valid"
  | "bad-signature"
  | "unknown-issuer"
  | "not-ca"
  | "key-usage"
  | "name-mismatch"
  | "unsupported"
  | "path-too-long";

/** A certificate parse or verification failure. */
export class CertificateError extends Error {
  /** The failure kind. */
  readonly code: CertificateErrorCode;

  constructor(code: CertificateErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CertificateError";
    this.code = code;
  }
}

/** The key-usage bit names of RFC 5280. */
export type KeyUsageName = KeyUsageType;

/** Key-usage names in bit order (RFC 5280 section 4.2.1.3); {@link Certificate.keyUsage} lists them so. */
export const KEY_USAGE_ORDER: readonly KeyUsageName[] = [
  "digitalSignature",
  "nonRepudiation",
  "keyEncipherment",
  "dataEncipherment",
  "keyAgreement",
  "keyCertSign",
  "crlSign",
  "encipherOnly",
  "decipherOnly",
];

/** A parsed certificate. Raw DER of the parts that are compared or signed is kept as bytes. */
export interface Certificate {
  /** The whole certificate. */
  readonly der: Uint8Array;
  /** The TBSCertificate bytes (what the issuer signed). */
  readonly tbs: Uint8Array;
  /** X.509 version (1, 2 or 3). */
  readonly version: number;
  /** Serial number as lower-case hex. */
  readonly serialNumber: string;
  /** Signature algorithm OID (outer). */
  readonly signatureAlgorithm: string;
  /** The DER of the signature algorithm's parameters, when present (RSASSA-PSS carries its hash and salt there). */
  readonly signatureParameters: Uint8Array | undefined;
  /** The signature bytes (DER ECDSA/SM2 signature, RSA signature block, raw EdDSA signature). */
  readonly signature: Uint8Array;
  /** Issuer DN DER. */
  readonly issuerDer: Uint8Array;
  /** Subject DN DER. */
  readonly subjectDer: Uint8Array;
  /** Issuer DN as text, e.g. `CN=Ferry Test Root, O=Ferry`. */
  readonly issuer: string;
  /** Subject DN as text. */
  readonly subject: string;
  /** The subject CN, if any. */
  readonly commonName: string | undefined;
  /** Start of validity. */
  readonly notBefore: Date;
  /** End of validity. */
  readonly notAfter: Date;
  /** The subject public key, of any algorithm (see {@link PublicKeyInfo}). */
  readonly publicKey: PublicKeyInfo;
  /** basicConstraints, when present. */
  readonly basicConstraints: { readonly ca: boolean; readonly pathLength: number | undefined } | undefined;
  /** Key-usage bits, when the extension is present. */
  readonly keyUsage: readonly KeyUsageName[] | undefined;
  /** Extended key-usage OIDs, when present. */
  readonly extKeyUsage: readonly string[] | undefined;
  /** SAN DNS names (lower-case). */
  readonly dnsNames: readonly string[];
  /** SAN IP addresses in canonical text form. */
  readonly ipAddresses: readonly string[];
  /** SAN URIs as written (SPIFFE identities: `spiffe://cluster.local/ns/default/sa/app`). */
  readonly uris: readonly string[];
  /** SAN e-mail addresses (rfc822Name). */
  readonly emails: readonly string[];
  /** Subject key identifier, when present. */
  readonly subjectKeyId: Uint8Array | undefined;
  /** Authority key identifier, when present. */
  readonly authorityKeyId: Uint8Array | undefined;
  /** OIDs of critical extensions this module does not understand. */
  readonly unknownCriticalExtensions: readonly string[];
}

const ATTR_NAMES: Record<string, string> = {
  "2.5.4.3": "CN",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.5": "serialNumber",
  "1.2.840.113549.1.9.1": "emailAddress",
};

function attrText(v: Name[number][number]["value"]): string {
  return v.utf8String ?? v.printableString ?? v.ia5String ?? v.teletexString ?? v.bmpString ?? v.universalString ??
    "#" + [...new Uint8Array(v.anyValue ?? new ArrayBuffer(0))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function nameText(name: Name): string {
  return name.map((rdn) => rdn.map((a) => `${ATTR_NAMES[a.type] ?? a.type}=${attrText(a.value)}`).join("+")).join(
    ", ",
  );
}

function toHexString(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

function malformed(what: string, e: unknown): CertificateError {
  const detail = e instanceof Error ? e.message : String(e);
  return new CertificateError("malformed", `certificate: malformed DER: ${what}: ${detail}`, { cause: e });
}

/** Canonical text for an IPv4 or IPv6 address given as text; undefined if it is not an IP literal. */
export function canonicalIp(text: string): string | undefined {
  const t = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(t)) {
    const parts = t.split(".").map(Number);
    return parts.every((p) => p <= 255) ? parts.join(".") : undefined;
  }
  if (!t.includes(":")) return undefined;
  const bytes = ipv6Bytes(t);
  return bytes ? ipBytesText(bytes) : undefined;
}

function ipv6Bytes(t: string): Uint8Array | undefined {
  const halves = t.split("::");
  if (halves.length > 2) return undefined;
  const parse = (s: string) => (s === "" ? [] : s.split(":"));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const groups: number[] = [];
  const push = (list: string[]) => {
    for (const g of list) {
      if (g.includes(".")) {
        const v4 = canonicalIp(g);
        if (!v4) return false;
        const p = v4.split(".").map(Number);
        groups.push((p[0]! << 8) | p[1]!, (p[2]! << 8) | p[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return false;
        groups.push(parseInt(g, 16));
      }
    }
    return true;
  };
  if (!push(head)) return undefined;
  const headLen = groups.length;
  if (!push(tail)) return undefined;
  const tailGroups = groups.splice(headLen);
  const fill = 8 - groups.length - tailGroups.length;
  if (halves.length === 1 ? fill !== 0 : fill < 1) return undefined;
  const all = [...groups, ...new Array<number>(fill).fill(0), ...tailGroups];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

function ipBytesText(b: Uint8Array): string | undefined {
  if (b.length === 4) return [...b].join(".");
  if (b.length !== 16) return undefined;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return groups.join(":");
}

function parseExtension<T>(ext: Extension, type: new () => T): T {
  return AsnConvert.parse(ext.extnValue.buffer, type);
}

/**
 * How many parsed certificates {@link parseCertificate} keeps, by DER (least recently used out). Parsing with
 * `@peculiar/asn1-schema` costs ~0.3 ms per certificate, paid on every handshake for the chain a peer sends;
 * a returning peer (a client certificate, an upstream's chain) sends the same bytes, and the shared result
 * also keeps its SM2 key's precomputed table (see {@link certificateSm2PublicKey}). Go's crypto/x509 caches
 * parsed certificates for the same reason.
 */
export const CERTIFICATE_CACHE_SIZE = 64;
/** Larger certificates are parsed every time (the cache key is the whole DER). */
const CERTIFICATE_CACHE_MAX_DER = 16384;
const parsedCertificates = new Map<string, Certificate>();

function derKey(der: Uint8Array): string {
  let s = "";
  for (let i = 0; i < der.length; i += 4096) {
    s += String.fromCharCode.apply(null, der.subarray(i, Math.min(der.length, i + 4096)) as unknown as number[]);
  }
  return s;
}

/**
 * Parses one certificate from DER or PEM (the first `CERTIFICATE` block). Results are shared: parsing the same
 * DER again returns the same (immutable) object (see {@link CERTIFICATE_CACHE_SIZE}), which keeps its own copy
 * of the DER.
 *
 * @param input DER bytes or PEM text
 */
export function parseCertificate(input: string | Uint8Array): Certificate {
  if (typeof input === "string") {
    const block = pemDecodeAll(input).find((b) => b.label === "CERTIFICATE");
    if (!block) throw new CertificateError("malformed", "certificate: no CERTIFICATE PEM block found");
    return parseCertificate(block.der);
  }
  if (input.length > CERTIFICATE_CACHE_MAX_DER) return parseCertificateDer(input);
  const key = derKey(input);
  const hit = parsedCertificates.get(key);
  if (hit) {
    parsedCertificates.delete(key); // re-insert: most recently used last
    parsedCertificates.set(key, hit);
    return hit;
  }
  // A copy: the caller's buffer may be a reused network buffer, and the cached object outlives the call.
  const cert = parseCertificateDer(input.slice());
  parsedCertificates.set(key, cert);
  if (parsedCertificates.size > CERTIFICATE_CACHE_SIZE) {
    parsedCertificates.delete(parsedCertificates.keys().next().value!);
  }
  return cert;
}

function parseCertificateDer(der: Uint8Array): Certificate {
  // Walk the outer structure ourselves to keep the exact TBS, name and key bytes.
  let tbs: Uint8Array, issuerDer: Uint8Array, subjectDer: Uint8Array, spki: PublicKeyInfo;
  let signature: Uint8Array, signatureAlgorithm: string, signatureParameters: Uint8Array | undefined;
  try {
    const outer = expectElement(der, 0, Tag.SEQUENCE, "Certificate");
    if (outer.end !== der.length) throw new DerError("Certificate: trailing bytes after the certificate");
    const base = outer.end - outer.content.length;
    const tbsEl = expectElement(der, base, Tag.SEQUENCE, "TBSCertificate");
    tbs = der.subarray(base, tbsEl.end);
    const alg = expectElement(der, tbsEl.end, Tag.SEQUENCE, "signatureAlgorithm");
    const algOid = expectElement(alg.content, 0, Tag.OID, "signatureAlgorithm");
    signatureAlgorithm = decodeOid(algOid.content);
    signatureParameters = algOid.end < alg.content.length ? alg.content.slice(algOid.end) : undefined;
    const sig = expectElement(der, alg.end, Tag.BIT_STRING, "signatureValue");
    if (sig.end !== outer.end) throw new DerError("Certificate: unexpected elements after signatureValue");
    if (sig.content[0] !== 0) throw new DerError("signatureValue: BIT STRING has unused bits");
    signature = sig.content.slice(1);
    const t = tbsEl.content;
    let off = 0;
    if (t[0] === 0xa0) off = readElement(t, 0, "version").end;
    off = expectElement(t, off, Tag.INTEGER, "serialNumber").end;
    off = expectElement(t, off, Tag.SEQUENCE, "signature").end;
    const issuerEl = expectElement(t, off, Tag.SEQUENCE, "issuer");
    issuerDer = t.subarray(off, issuerEl.end);
    off = expectElement(t, issuerEl.end, Tag.SEQUENCE, "validity").end;
    const subjectEl = expectElement(t, off, Tag.SEQUENCE, "subject");
    subjectDer = t.subarray(off, subjectEl.end);
    const spkiEl = expectElement(t, subjectEl.end, Tag.SEQUENCE, "subjectPublicKeyInfo");
    // Any algorithm: names, SANs and validity do not depend on the key (see the module doc).
    spki = parsePublicKeyInfo(t.subarray(subjectEl.end, spkiEl.end), "subjectPublicKeyInfo");
  } catch (e) {
    if (e instanceof CertificateError) throw e;
    throw malformed("structure", e);
  }
  let cert: AsnCertificate;
  try {
    cert = AsnConvert.parse(der, AsnCertificate);
  } catch (e) {
    throw malformed("fields", e);
  }
  const tc = cert.tbsCertificate;
  const subject = nameText(tc.subject);
  let basicConstraints: Certificate["basicConstraints"];
  let keyUsage: KeyUsageName[] | undefined;
  let extKeyUsage: string[] | undefined;
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  const uris: string[] = [];
  const emails: string[] = [];
  let subjectKeyId: Uint8Array | undefined;
  let authorityKeyId: Uint8Array | undefined;
  const unknownCriticalExtensions: string[] = [];
  const seen = new Set<string>();
  try {
    for (const ext of tc.extensions ?? []) {
      if (seen.has(ext.extnID)) throw new DerError(`extension ${ext.extnID} appears twice`);
      seen.add(ext.extnID);
      switch (ext.extnID) {
        case id_ce_basicConstraints: {
          const bc = parseExtension(ext, BasicConstraints);
          basicConstraints = { ca: bc.cA, pathLength: bc.pathLenConstraint };
          break;
        }
        case id_ce_keyUsage:
          keyUsage = parseExtension(ext, KeyUsage).toJSON().sort((a, b) =>
            KEY_USAGE_ORDER.indexOf(a) - KEY_USAGE_ORDER.indexOf(b)
          );
          break;
        case id_ce_extKeyUsage:
          extKeyUsage = [...parseExtension(ext, ExtendedKeyUsage)];
          break;
        case id_ce_subjectAltName:
          for (const gn of parseExtension(ext, SubjectAlternativeName)) {
            if (gn.dNSName !== undefined) dnsNames.push(gn.dNSName.toLowerCase());
            if (gn.uniformResourceIdentifier !== undefined) uris.push(gn.uniformResourceIdentifier);
            if (gn.rfc822Name !== undefined) emails.push(gn.rfc822Name);
            if (gn.iPAddress !== undefined) {
              const ip = canonicalIp(gn.iPAddress);
              if (ip) ipAddresses.push(ip);
            }
          }
          break;
        case id_ce_subjectKeyIdentifier:
          subjectKeyId = new Uint8Array(parseExtension(ext, SubjectKeyIdentifier).buffer);
          break;
        case id_ce_authorityKeyIdentifier: {
          const aki = parseExtension(ext, AuthorityKeyIdentifier);
          if (aki.keyIdentifier) authorityKeyId = new Uint8Array(aki.keyIdentifier.buffer);
          break;
        }
        default:
          if (ext.critical) unknownCriticalExtensions.push(ext.extnID);
      }
    }
  } catch (e) {
    throw malformed(`extensions of "${subject}"`, e);
  }
  const cnAttr = tc.subject.flat().find((a) => a.type === "2.5.4.3");
  // Frozen: parsed certificates are shared (see CERTIFICATE_CACHE_SIZE).
  if (keyUsage) Object.freeze(keyUsage);
  if (extKeyUsage) Object.freeze(extKeyUsage);
  if (basicConstraints) Object.freeze(basicConstraints);
  return Object.freeze({
    der,
    tbs,
    version: tc.version + 1,
    serialNumber: toHexString(new Uint8Array(tc.serialNumber)).replace(/^(00)+(?=.)/, ""),
    signatureAlgorithm,
    signatureParameters,
    signature,
    issuerDer,
    subjectDer,
    issuer: nameText(tc.issuer),
    subject,
    commonName: cnAttr ? attrText(cnAttr.value) : undefined,
    notBefore: tc.validity.notBefore.getTime(),
    notAfter: tc.validity.notAfter.getTime(),
    publicKey: spki,
    basicConstraints,
    keyUsage,
    extKeyUsage,
    subjectKeyId,
    authorityKeyId,
    unknownCriticalExtensions: Object.freeze(unknownCriticalExtensions),
    dnsNames: Object.freeze(dnsNames),
    ipAddresses: Object.freeze(ipAddresses),
    uris: Object.freeze(uris),
    emails: Object.freeze(emails),
  });
}

/**
 * Parses every `CERTIFICATE` block in PEM text, in order.
 *
 * @param pem PEM text
 */
export function parseCertificates(pem: string): Certificate[] {
  return pemDecodeAll(pem).filter((b) => b.label === "CERTIFICATE").map((b) => parseCertificate(b.der));
}

const sm2KeyCache = new WeakMap<Certificate, Sm2PublicKey>();

/**
 * The certificate's SM2 public key (cached per certificate object, so repeated verifications reuse the key's
 * precomputed table). Throws if the key is not SM2.
 *
 * @param cert the certificate
 */
export function certificateSm2PublicKey(cert: Certificate): Sm2PublicKey {
  let key = sm2KeyCache.get(cert);
  if (!key) {
    if (cert.publicKey.curve !== "sm2") {
      throw new CertificateError("unsupported", `certificate "${cert.subject}": public key is not SM2`);
    }
    try {
      key = Sm2PublicKey.fromBytes(cert.publicKey.point);
    } catch (e) {
      throw new CertificateError("malformed", `certificate "${cert.subject}": public key is not on the curve`, {
        cause: e,
      });
    }
    sm2KeyCache.set(cert, key);
  }
  return key;
}

/** Signature algorithms checked through `node:crypto`: the digest (null for EdDSA) and the signer's key algorithm. */
const NODE_SIGNATURES: Readonly<Record<string, { readonly hash: string | null; readonly key: string }>> = {
  [OID.sha256WithRsa]: { hash: "sha256", key: OID.rsaEncryption },
  [OID.sha384WithRsa]: { hash: "sha384", key: OID.rsaEncryption },
  [OID.sha512WithRsa]: { hash: "sha512", key: OID.rsaEncryption },
  [OID.ecdsaWithSha256]: { hash: "sha256", key: OID.ecPublicKey },
  [OID.ecdsaWithSha384]: { hash: "sha384", key: OID.ecPublicKey },
  [OID.ecdsaWithSha512]: { hash: "sha512", key: OID.ecPublicKey },
  [OID.ed25519]: { hash: null, key: OID.ed25519 },
  [OID.ed448]: { hash: null, key: OID.ed448 },
};

const PSS_HASHES: Readonly<Record<string, string>> = {
  [OID.sha256]: "sha256",
  [OID.sha384]: "sha384",
  [OID.sha512]: "sha512",
};

/** The digest and salt length of RSASSA-PSS-params (RFC 4055 section 3.1); SHA-1 (the default) is refused. */
function pssParameters(cert: Certificate): { hash: string; saltLength: number } {
  const bad = (why: string, code: CertificateErrorCode = "malformed") =>
    new CertificateError(code, `certificate "${cert.subject}": RSASSA-PSS parameters: ${why}`);
  const der = cert.signatureParameters;
  if (!der) throw bad("missing");
  let hashOid: string | undefined, mgfHashOid: string | undefined, saltLength = 20, trailer = 1;
  try {
    const seq = expectElement(der, 0, Tag.SEQUENCE, "RSASSA-PSS-params");
    if (seq.end !== der.length) throw new DerError("trailing bytes");
    const c = seq.content;
    // An AlgorithmIdentifier's OID (hashAlgorithm, and MGF1's hash parameter).
    const oidOf = (el: Uint8Array, what: string) =>
      decodeOid(expectElement(expectElement(el, 0, Tag.SEQUENCE, what).content, 0, Tag.OID, what).content);
    const intOf = (el: Uint8Array, what: string) =>
      Number(decodeUnsignedInteger(expectElement(el, 0, Tag.INTEGER, what).content, what));
    for (let off = 0; off < c.length;) {
      const el = readElement(c, off, "RSASSA-PSS-params");
      if (el.tag === 0xa0) hashOid = oidOf(el.content, "hashAlgorithm");
      else if (el.tag === 0xa1) {
        const mgf = expectElement(el.content, 0, Tag.SEQUENCE, "maskGenAlgorithm").content;
        const mgfOid = expectElement(mgf, 0, Tag.OID, "maskGenAlgorithm");
        if (decodeOid(mgfOid.content) !== OID.mgf1) throw new DerError("the mask generation function is not MGF1");
        mgfHashOid = oidOf(mgf.subarray(mgfOid.end), "MGF1 hash");
      } else if (el.tag === 0xa2) saltLength = intOf(el.content, "saltLength");
      else if (el.tag === 0xa3) trailer = intOf(el.content, "trailerField");
      else throw new DerError(`unexpected element 0x${el.tag.toString(16)}`);
      off = el.end;
    }
  } catch (e) {
    throw bad(e instanceof Error ? e.message : String(e));
  }
  const hash = hashOid === undefined ? undefined : PSS_HASHES[hashOid];
  if (!hash) throw bad(`unsupported hash ${hashOid ?? "SHA-1 (the default)"}`, "unsupported");
  if ((mgfHashOid ?? "SHA-1") !== hashOid) throw bad("the MGF1 hash differs from the message hash", "unsupported");
  if (trailer !== 1) throw bad(`unsupported trailerField ${trailer}`, "unsupported");
  return { hash, saltLength };
}

const nodeKeyCache = new WeakMap<Certificate, KeyObject>();

/** The certificate's key as a `node:crypto` KeyObject (cached per certificate object). */
function certificateNodeKey(cert: Certificate): KeyObject {
  let key = nodeKeyCache.get(cert);
  if (!key) {
    try {
      key = createPublicKey({ key: Buffer.from(cert.publicKey.der), format: "der", type: "spki" });
    } catch (e) {
      throw new CertificateError(
        "malformed",
        `certificate "${cert.subject}": its ${publicKeyName(cert.publicKey)} public key does not load: ${
          e instanceof Error ? e.message : String(e)
        }`,
        { cause: e },
      );
    }
    nodeKeyCache.set(cert, key);
  }
  return key;
}

/**
 * Checks `cert`'s signature with `issuer`'s public key; false when it does not verify or the issuer's key does
 * not fit the signature algorithm. SM2 signatures use Z_A of the issuer key with `sm2Id` (default
 * `1234567812345678`, as OpenSSL and TLCP do). Throws a {@link CertificateError} for a signature algorithm this
 * module does not check (see the module doc) or an issuer key that does not load.
 *
 * @param cert the signed certificate
 * @param issuer the certificate whose key signed it
 * @param sm2Id the signer ID for SM2 signatures
 */
export function verifyCertificateSignature(
  cert: Certificate,
  issuer: Certificate,
  sm2Id: Uint8Array = SM2_DEFAULT_ID,
): boolean {
  if (cert.signatureAlgorithm === OID.sm2WithSm3) {
    if (issuer.publicKey.curve !== "sm2") return false;
    const key = certificateSm2PublicKey(issuer); // a key off the curve is a malformed issuer, not a bad signature
    try {
      return key.verify(cert.tbs, cert.signature, { id: sm2Id });
    } catch {
      return false;
    }
  }
  if (cert.signatureAlgorithm === OID.ecdsaWithSha256 && issuer.publicKey.curve === "p256") {
    try {
      return p256.verify(cert.signature, cert.tbs, issuer.publicKey.point, { format: "der", lowS: false });
    } catch {
      return false;
    }
  }
  const k = issuer.publicKey;
  let hash: string | null;
  let options: { padding?: number; saltLength?: number } = {};
  if (cert.signatureAlgorithm === OID.rsassaPss) {
    const pss = pssParameters(cert);
    if (k.algorithm !== OID.rsaEncryption && k.algorithm !== OID.rsassaPss) return false;
    hash = pss.hash;
    options = { padding: nodeCryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: pss.saltLength };
  } else {
    const scheme = NODE_SIGNATURES[cert.signatureAlgorithm];
    if (!scheme) {
      throw new CertificateError(
        "unsupported",
        `certificate "${cert.subject}": unsupported signature algorithm ${cert.signatureAlgorithm}`,
      );
    }
    // An SM2 key may be written as an EC key on the SM2 curve; ECDSA does not apply to it.
    if (k.algorithm !== scheme.key || k.curve === "sm2") return false;
    hash = scheme.hash;
  }
  const key = certificateNodeKey(issuer);
  try {
    return nodeVerify(hash, cert.tbs, { key, ...options }, cert.signature);
  } catch {
    return false;
  }
}

/** What the leaf certificate will be used for; decides which key-usage bits it must have. */
export type CertificatePurpose =
  /** TLCP signing certificate, TLS 1.3 certificate: digitalSignature. */
  | "sign"
  /** TLCP encryption certificate: keyEncipherment, keyAgreement or dataEncipherment. */
  | "encrypt"
  /** No key-usage requirement. */
  | "any";

/** Options for {@link verifyCertificateChain}. */
export interface VerifyChainOptions {
  /** Trust anchors. */
  roots: readonly Certificate[];
  /** Untrusted intermediates (e.g. the rest of the peer's chain). */
  intermediates?: readonly Certificate[];
  /** The time to check validity at; default now. */
  now?: Date;
  /** A DNS name or IP literal the leaf must match. */
  hostname?: string;
  /** The leaf's purpose; default `"any"`. */
  purpose?: CertificatePurpose;
  /** SM2 signer ID used for certificate signatures; default `1234567812345678`. */
  sm2Id?: Uint8Array;
  /** Maximum number of certificates in the chain including leaf and root; default 8. */
  maxDepth?: number;
}

function checkDates(cert: Certificate, now: Date): void {
  if (now.getTime() < cert.notBefore.getTime()) {
    throw new CertificateError(
      "not-yet-valid",
      `certificate "${cert.subject}": not yet valid: valid from ${cert.notBefore.toISOString()}`,
    );
  }
  if (now.getTime() > cert.notAfter.getTime()) {
    throw new CertificateError("expired", `certificate "${cert.subject}": expired at ${cert.notAfter.toISOString()}`);
  }
}

function checkCriticalExtensions(cert: Certificate): void {
  if (cert.unknownCriticalExtensions.length > 0) {
    throw new CertificateError(
      "unsupported",
      `certificate "${cert.subject}": unsupported critical extension ${cert.unknownCriticalExtensions.join(", ")}`,
    );
  }
}

/**
 * Checks that `cert` may be used for `purpose` (key usage absent means unrestricted, as RFC 5280 says).
 *
 * @param cert the leaf certificate
 * @param purpose the intended use
 */
export function checkKeyUsage(cert: Certificate, purpose: CertificatePurpose): void {
  if (purpose === "any" || cert.keyUsage === undefined) return;
  const ku = cert.keyUsage;
  const ok = purpose === "sign"
    ? ku.includes("digitalSignature")
    : ku.includes("keyEncipherment") || ku.includes("keyAgreement") || ku.includes("dataEncipherment");
  if (!ok) {
    const need = purpose === "sign" ? "digitalSignature" : "keyEncipherment, keyAgreement or dataEncipherment";
    throw new CertificateError(
      "key-usage",
      `certificate "${cert.subject}": wrong key usage: has ${ku.join(", ") || "none"}, needs ${need}`,
    );
  }
}

function dnsMatches(pattern: string, host: string): boolean {
  if (pattern === host) return true;
  if (!pattern.startsWith("*.")) return false;
  const suffix = pattern.slice(1); // ".example.com"
  if (suffix.split(".").length < 3) return false; // no "*.com"
  if (!host.endsWith(suffix)) return false;
  const label = host.slice(0, host.length - suffix.length);
  return label.length > 0 && !label.includes(".");
}

/**
 * Checks that `cert` names `hostname`: an IP literal must equal a SAN IP address; a DNS name must match a SAN
 * DNS name (a leading `*.` matches exactly one label), or the CN when the certificate has no SAN DNS names.
 *
 * @param cert the leaf certificate
 * @param hostname a DNS name or IP literal
 */
export function checkHostname(cert: Certificate, hostname: string): void {
  const ip = canonicalIp(hostname);
  let ok: boolean;
  if (ip !== undefined) {
    ok = cert.ipAddresses.includes(ip);
  } else {
    const host = hostname.toLowerCase().replace(/\.$/, "");
    const names = cert.dnsNames.length > 0
      ? cert.dnsNames
      : cert.commonName !== undefined && cert.ipAddresses.length === 0
      ? [cert.commonName.toLowerCase()]
      : [];
    ok = names.some((n) => dnsMatches(n, host));
  }
  if (!ok) {
    const has = [...cert.dnsNames, ...cert.ipAddresses].join(", ") || `CN ${cert.commonName ?? "(none)"}`;
    throw new CertificateError(
      "name-mismatch",
      `certificate "${cert.subject}": name mismatch: "${hostname}" is not one of ${has}`,
    );
  }
}

function sameCert(a: Certificate, b: Certificate): boolean {
  return a.der.length === b.der.length && equalBytes(a.der, b.der);
}

function issuedBy(cert: Certificate, candidate: Certificate): boolean {
  if (!equalBytes(cert.issuerDer, candidate.subjectDer) && cert.issuer !== candidate.subject) return false;
  if (cert.authorityKeyId && candidate.subjectKeyId) return equalBytes(cert.authorityKeyId, candidate.subjectKeyId);
  return true;
}

function checkIssuer(issuer: Certificate, below: number): void {
  const bc = issuer.basicConstraints;
  if (!bc || !bc.ca) {
    throw new CertificateError(
      "not-ca",
      `certificate "${issuer.subject}": is not a CA (basicConstraints CA is not set)`,
    );
  }
  if (issuer.keyUsage !== undefined && !issuer.keyUsage.includes("keyCertSign")) {
    throw new CertificateError("key-usage", `certificate "${issuer.subject}": wrong key usage: keyCertSign is not set`);
  }
  if (bc.pathLength !== undefined && below > bc.pathLength) {
    throw new CertificateError(
      "path-too-long",
      `certificate "${issuer.subject}": path length constraint ${bc.pathLength} exceeded`,
    );
  }
}

/**
 * Verifies `leaf` up to one of `options.roots`: each signature, validity dates at `now`, that every issuer is
 * a CA allowed to sign certificates, path-length limits, no unknown critical extensions, the leaf's key usage
 * for `purpose` and, if given, `hostname`. Returns the chain from leaf to root; throws a
 * {@link CertificateError} otherwise.
 *
 * @param leaf the end-entity certificate
 * @param options roots, intermediates, time, host name and purpose
 */
export function verifyCertificateChain(leaf: Certificate, options: VerifyChainOptions): Certificate[] {
  const now = options.now ?? new Date();
  const maxDepth = options.maxDepth ?? 8;
  const pool = [...options.roots, ...(options.intermediates ?? [])];
  checkCriticalExtensions(leaf);
  checkDates(leaf, now);
  checkKeyUsage(leaf, options.purpose ?? "any");
  if (options.hostname !== undefined) checkHostname(leaf, options.hostname);
  const chain = [leaf];
  let current = leaf;
  for (;;) {
    if (options.roots.some((r) => sameCert(r, current))) return chain;
    if (chain.length >= maxDepth) {
      throw new CertificateError("path-too-long", `certificate "${leaf.subject}": chain is longer than ${maxDepth}`);
    }
    const candidates = pool.filter((c) => !chain.some((x) => sameCert(x, c)) && issuedBy(current, c));
    if (candidates.length === 0) {
      throw new CertificateError(
        "unknown-issuer",
        `certificate "${current.subject}": unknown issuer "${current.issuer}"`,
      );
    }
    const issuer = candidates.find((c) => verifyCertificateSignature(current, c, options.sm2Id));
    if (!issuer) {
      throw new CertificateError(
        "bad-signature",
        `certificate "${current.subject}": bad signature: not signed by "${current.issuer}"`,
      );
    }
    checkCriticalExtensions(issuer);
    checkIssuer(issuer, chain.length - 1);
    checkDates(issuer, now);
    chain.push(issuer);
    current = issuer;
  }
}
