/**
 * PEM armour and EC key encodings: PKCS#8 `PRIVATE KEY`, SEC1 `EC PRIVATE KEY` and SubjectPublicKeyInfo
 * `PUBLIC KEY`, for SM2 (OID 1.2.156.10197.1.301) and P-256 keys. Written keys load with `openssl pkey`.
 * {@link parsePublicKeyInfo} reads the SubjectPublicKeyInfo of any algorithm (RSA, P-384, Ed25519, ...) as
 * opaque bytes with its algorithm, which is all a certificate reader needs from keys it does not compute with.
 *
 * @module
 */

import { p256 } from "@noble/curves/nist.js";
import {
  concatBytes,
  decodeOid,
  decodeUnsignedInteger,
  DerError,
  encodeElement,
  encodeOid,
  encodeSequence,
  encodeUnsignedInteger,
  expectElement,
  readElement,
  Tag,
} from "./asn1.ts";
import { Sm2PrivateKey, Sm2PublicKey } from "./sm2.ts";

/** Object identifiers used by keys and certificates. */
export const OID = {
  ecPublicKey: "1.2.840.10045.2.1",
  sm2: "1.2.156.10197.1.301",
  p256: "1.2.840.10045.3.1.7",
  sm2WithSm3: "1.2.156.10197.1.501",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  ecdsaWithSha384: "1.2.840.10045.4.3.3",
  ecdsaWithSha512: "1.2.840.10045.4.3.4",
  p384: "1.3.132.0.34",
  p521: "1.3.132.0.35",
  rsaEncryption: "1.2.840.113549.1.1.1",
  rsassaPss: "1.2.840.113549.1.1.10",
  sha256WithRsa: "1.2.840.113549.1.1.11",
  sha384WithRsa: "1.2.840.113549.1.1.12",
  sha512WithRsa: "1.2.840.113549.1.1.13",
  mgf1: "1.2.840.113549.1.1.8",
  sha256: "2.16.840.1.101.3.4.2.1",
  sha384: "2.16.840.1.101.3.4.2.2",
  sha512: "2.16.840.1.101.3.4.2.3",
  ed25519: "1.3.101.112",
  ed448: "1.3.101.113",
} as const;

/** The curves this module reads and writes. */
export type EcCurve = "sm2" | "p256";

/** A decoded EC private key: curve, 32-byte scalar, and the public point if the encoding carried it. */
export interface EcPrivateKeyData {
  /** The curve. */
  readonly curve: EcCurve;
  /** The private scalar, 32 bytes big-endian. */
  readonly d: Uint8Array;
  /** The uncompressed public point, when present in the encoding. */
  readonly publicKey?: Uint8Array;
}

/** A decoded EC public key: curve and the encoded point. */
export interface EcPublicKeyData {
  /** The curve. */
  readonly curve: EcCurve;
  /** The point as encoded (normally `04 || x || y`). */
  readonly point: Uint8Array;
}

/**
 * A SubjectPublicKeyInfo of any algorithm, as a certificate carries it. Keys this module's EC code computes
 * with (SM2, P-256) name their {@link curve}; every other key (RSA, RSA-PSS, P-384, P-521, Ed25519, ...) is
 * opaque here: its algorithm and parameters OIDs and its bytes, which `node:crypto` and rustls understand.
 */
export interface PublicKeyInfo {
  /** The key algorithm OID, e.g. `1.2.840.10045.2.1` (EC), `1.2.840.113549.1.1.1` (RSA), `1.3.101.112` (Ed25519). */
  readonly algorithm: string;
  /** The algorithm parameters when they are an OID (the named curve of an EC key), else undefined. */
  readonly parameters: string | undefined;
  /** `"sm2"` or `"p256"` for the keys {@link EcPublicKeyData} covers; undefined for every other key. */
  readonly curve: EcCurve | undefined;
  /**
   * The subjectPublicKey bits: the encoded point (`04 || x || y`) of an EC key; another algorithm's own
   * encoding otherwise (an RSAPublicKey DER, the 32 raw bytes of an Ed25519 key).
   */
  readonly point: Uint8Array;
  /** The whole SubjectPublicKeyInfo DER (what `node:crypto` imports as `spki`). */
  readonly der: Uint8Array;
}

/** One PEM block. */
export interface PemBlock {
  /** The label, e.g. `"CERTIFICATE"`. */
  readonly label: string;
  /** The decoded DER. */
  readonly der: Uint8Array;
}

const PEM_RE = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/**
 * Decodes every PEM block in `text`, in order.
 *
 * @param text PEM text
 */
export function pemDecodeAll(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of text.matchAll(PEM_RE)) {
    const body = m[2]!.replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw new DerError(`PEM "${m[1]}": invalid base64`);
    const bin = atob(body);
    const der = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) der[i] = bin.charCodeAt(i);
    out.push({ label: m[1]!, der });
  }
  return out;
}

/**
 * Returns the DER of the first PEM block whose label is one of `labels`; throws if there is none.
 *
 * @param text PEM text
 * @param labels acceptable labels
 */
export function pemDecode(text: string, ...labels: string[]): PemBlock {
  const block = pemDecodeAll(text).find((b) => labels.length === 0 || labels.includes(b.label));
  if (!block) throw new DerError(`PEM: no ${labels.join(" or ") || "PEM"} block found`);
  return block;
}

/**
 * Encodes DER as a PEM block with 64-character lines.
 *
 * @param label e.g. `"CERTIFICATE"`
 * @param der the DER bytes
 */
export function pemEncode(label: string, der: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < der.length; i++) bin += String.fromCharCode(der[i]!);
  const b64 = btoa(bin);
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

function curveFromOid(oid: string, what: string): EcCurve {
  if (oid === OID.sm2) return "sm2";
  if (oid === OID.p256) return "p256";
  throw new DerError(`${what}: unsupported curve OID ${oid}`);
}

function curveOid(curve: EcCurve): string {
  return curve === "sm2" ? OID.sm2 : OID.p256;
}

/** Parses AlgorithmIdentifier { id-ecPublicKey | sm2, curve OID } and returns the curve. */
function parseEcAlgorithm(content: Uint8Array, what: string): EcCurve {
  const alg = expectElement(content, 0, Tag.OID, what + " algorithm");
  const algOid = decodeOid(alg.content);
  if (algOid === OID.sm2 && alg.end === content.length) return "sm2";
  if (algOid !== OID.ecPublicKey && algOid !== OID.sm2) {
    throw new DerError(`${what}: unsupported key algorithm ${algOid}`);
  }
  const param = expectElement(content, alg.end, Tag.OID, what + " curve");
  return curveFromOid(decodeOid(param.content), what);
}

function ecAlgorithmIdentifier(curve: EcCurve): Uint8Array {
  return encodeSequence(encodeOid(OID.ecPublicKey), encodeOid(curveOid(curve)));
}

function leftPad32(b: Uint8Array, what: string): Uint8Array {
  if (b.length > 32) throw new DerError(`${what}: private key is longer than 32 bytes`);
  const out = new Uint8Array(32);
  out.set(b, 32 - b.length);
  return out;
}

/** Parses SEC1 ECPrivateKey content; `curve` comes from the outer PKCS#8 algorithm if known. */
function parseEcPrivateKey(der: Uint8Array, outerCurve: EcCurve | undefined, what: string): EcPrivateKeyData {
  const seq = expectElement(der, 0, Tag.SEQUENCE, what);
  const c = seq.content;
  const ver = expectElement(c, 0, Tag.INTEGER, what + " version");
  if (decodeUnsignedInteger(ver.content, what) !== 1n) throw new DerError(`${what}: ECPrivateKey version must be 1`);
  const priv = expectElement(c, ver.end, Tag.OCTET_STRING, what + " privateKey");
  let curve = outerCurve;
  let publicKey: Uint8Array | undefined;
  for (let off = priv.end; off < c.length;) {
    const el = readElement(c, off, what);
    if (el.tag === 0xa0) {
      const oid = expectElement(el.content, 0, Tag.OID, what + " parameters");
      const inner = curveFromOid(decodeOid(oid.content), what);
      if (curve !== undefined && curve !== inner) throw new DerError(`${what}: curve parameters disagree`);
      curve = inner;
    } else if (el.tag === 0xa1) {
      const bits = expectElement(el.content, 0, Tag.BIT_STRING, what + " publicKey");
      if (bits.content[0] !== 0) throw new DerError(`${what}: public key BIT STRING has unused bits`);
      publicKey = bits.content.slice(1);
    } else {
      throw new DerError(`${what}: unexpected element 0x${el.tag.toString(16)}`);
    }
    off = el.end;
  }
  if (curve === undefined) throw new DerError(`${what}: curve is not specified`);
  const d = leftPad32(priv.content, what);
  return publicKey ? { curve, d, publicKey } : { curve, d };
}

function toDer(input: string | Uint8Array, labels: string[]): { der: Uint8Array; label: string | undefined } {
  if (typeof input !== "string") return { der: input, label: undefined };
  const b = pemDecode(input, ...labels);
  return { der: b.der, label: b.label };
}

/**
 * Decodes an EC private key from PEM (`PRIVATE KEY` or `EC PRIVATE KEY`) or DER (PKCS#8 or SEC1).
 *
 * @param input PEM text or DER bytes
 */
export function decodeEcPrivateKey(input: string | Uint8Array): EcPrivateKeyData {
  const { der, label } = toDer(input, ["PRIVATE KEY", "EC PRIVATE KEY"]);
  const what = "private key";
  const seq = expectElement(der, 0, Tag.SEQUENCE, what);
  if (seq.end !== der.length) throw new DerError(`${what}: trailing bytes after the key`);
  const ver = expectElement(seq.content, 0, Tag.INTEGER, what + " version");
  const version = decodeUnsignedInteger(ver.content, what + " version");
  if (label === "EC PRIVATE KEY" || version === 1n) return parseEcPrivateKey(der, undefined, "EC private key");
  if (version !== 0n) throw new DerError(`${what}: unsupported PKCS#8 version ${version}`);
  const alg = expectElement(seq.content, ver.end, Tag.SEQUENCE, what + " algorithm");
  const curve = parseEcAlgorithm(alg.content, what);
  const octets = expectElement(seq.content, alg.end, Tag.OCTET_STRING, what + " privateKey");
  return parseEcPrivateKey(octets.content, curve, "PKCS#8 EC private key");
}

/**
 * Decodes a SubjectPublicKeyInfo (PEM `PUBLIC KEY` or DER) with an EC key.
 *
 * @param input PEM text or DER bytes
 */
export function decodeEcPublicKey(input: string | Uint8Array): EcPublicKeyData {
  const { der } = toDer(input, ["PUBLIC KEY"]);
  const what = "public key";
  const seq = expectElement(der, 0, Tag.SEQUENCE, what);
  if (seq.end !== der.length) throw new DerError(`${what}: trailing bytes after the key`);
  return parseSpkiContent(seq.content, what);
}

/**
 * Parses the content of a SubjectPublicKeyInfo SEQUENCE.
 *
 * @param content the SEQUENCE content
 * @param what the structure being read, for the error message
 */
export function parseSpkiContent(content: Uint8Array, what: string): EcPublicKeyData {
  const alg = expectElement(content, 0, Tag.SEQUENCE, what + " algorithm");
  const curve = parseEcAlgorithm(alg.content, what);
  const bits = expectElement(content, alg.end, Tag.BIT_STRING, what + " subjectPublicKey");
  if (bits.content[0] !== 0) throw new DerError(`${what}: BIT STRING has unused bits`);
  return { curve, point: bits.content.slice(1) };
}

/**
 * Parses a SubjectPublicKeyInfo (DER, the whole SEQUENCE) of any algorithm: only its structure is checked,
 * not the key, so a certificate reader needs no knowledge of RSA or EdDSA. SM2 and P-256 keys get their
 * {@link PublicKeyInfo.curve}.
 *
 * @param der the SubjectPublicKeyInfo DER
 * @param what the structure being read, for the error message
 */
export function parsePublicKeyInfo(der: Uint8Array, what: string): PublicKeyInfo {
  const seq = expectElement(der, 0, Tag.SEQUENCE, what);
  if (seq.end !== der.length) throw new DerError(`${what}: trailing bytes after the key`);
  const alg = expectElement(seq.content, 0, Tag.SEQUENCE, what + " algorithm");
  const oid = expectElement(alg.content, 0, Tag.OID, what + " algorithm");
  const algorithm = decodeOid(oid.content);
  let parameters: string | undefined;
  if (oid.end < alg.content.length) {
    const p = readElement(alg.content, oid.end, what + " algorithm parameters");
    if (p.end !== alg.content.length) throw new DerError(`${what}: unexpected elements after the parameters`);
    if (p.tag === Tag.OID) parameters = decodeOid(p.content);
  }
  const bits = expectElement(seq.content, alg.end, Tag.BIT_STRING, what + " subjectPublicKey");
  if (bits.end !== seq.content.length) throw new DerError(`${what}: unexpected elements after the key`);
  if (bits.content[0] !== 0) throw new DerError(`${what}: BIT STRING has unused bits`);
  let curve: EcCurve | undefined;
  if (algorithm === OID.sm2 && parameters === undefined) curve = "sm2";
  else if (algorithm === OID.ecPublicKey || algorithm === OID.sm2) {
    curve = parameters === OID.sm2 ? "sm2" : parameters === OID.p256 ? "p256" : undefined;
  }
  return { algorithm, parameters, curve, point: bits.content.slice(1), der: der.slice() };
}

const KEY_NAMES: Record<string, string> = {
  [OID.rsaEncryption]: "RSA",
  [OID.rsassaPss]: "RSA-PSS",
  [OID.ed25519]: "Ed25519",
  [OID.ed448]: "Ed448",
};
const CURVE_NAMES: Record<string, string> = {
  [OID.p256]: "P-256",
  [OID.p384]: "P-384",
  [OID.p521]: "P-521",
  [OID.sm2]: "SM2",
};

/**
 * A short name for a key's algorithm, for messages: `RSA`, `P-384`, `Ed25519`, `SM2`, ..., or `key <OID>`.
 *
 * @param key the key
 */
export function publicKeyName(key: PublicKeyInfo): string {
  if (key.curve === "sm2") return "SM2";
  if (key.algorithm === OID.ecPublicKey) {
    return (key.parameters && CURVE_NAMES[key.parameters]) ?? `EC key on curve ${key.parameters ?? "(explicit)"}`;
  }
  return KEY_NAMES[key.algorithm] ?? `key ${key.algorithm}`;
}

/**
 * Encodes a PKCS#8 PrivateKeyInfo for an EC key (the form `openssl genpkey` writes).
 *
 * @param key curve, scalar and public point
 */
export function encodeEcPrivateKeyPkcs8(key: EcPrivateKeyData): Uint8Array {
  const inner = encodeSequence(
    encodeUnsignedInteger(1n),
    encodeElement(Tag.OCTET_STRING, key.d),
    ...(key.publicKey
      ? [encodeElement(0xa1, encodeElement(Tag.BIT_STRING, concatBytes(new Uint8Array([0]), key.publicKey)))]
      : []),
  );
  return encodeSequence(
    encodeUnsignedInteger(0n),
    ecAlgorithmIdentifier(key.curve),
    encodeElement(Tag.OCTET_STRING, inner),
  );
}

/**
 * Encodes a SubjectPublicKeyInfo for an EC point.
 *
 * @param key curve and encoded point
 */
export function encodeEcPublicKey(key: EcPublicKeyData): Uint8Array {
  return encodeSequence(
    ecAlgorithmIdentifier(key.curve),
    encodeElement(Tag.BIT_STRING, concatBytes(new Uint8Array([0]), key.point)),
  );
}

/**
 * Reads an SM2 private key from PEM or DER (PKCS#8 or SEC1). Throws if the key is on another curve, out of
 * range, or its embedded public key does not match.
 *
 * @param input PEM text or DER bytes
 */
export function readSm2PrivateKey(input: string | Uint8Array): Sm2PrivateKey {
  const data = decodeEcPrivateKey(input);
  if (data.curve !== "sm2") throw new DerError(`private key: expected an SM2 key, found ${data.curve}`);
  const key = Sm2PrivateKey.fromBytes(data.d);
  if (data.publicKey && !key.publicKey.equals(Sm2PublicKey.fromBytes(data.publicKey))) {
    throw new DerError("private key: embedded public key does not match the private scalar");
  }
  return key;
}

/**
 * Reads an SM2 public key from a SubjectPublicKeyInfo (PEM or DER).
 *
 * @param input PEM text or DER bytes
 */
export function readSm2PublicKey(input: string | Uint8Array): Sm2PublicKey {
  const data = decodeEcPublicKey(input);
  if (data.curve !== "sm2") throw new DerError(`public key: expected an SM2 key, found ${data.curve}`);
  return Sm2PublicKey.fromBytes(data.point);
}

/**
 * Writes an SM2 private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
 *
 * @param key the key
 */
export function writeSm2PrivateKey(key: Sm2PrivateKey): string {
  const der = encodeEcPrivateKeyPkcs8({ curve: "sm2", d: key.toBytes(), publicKey: key.publicKey.toBytes() });
  return pemEncode("PRIVATE KEY", der);
}

/**
 * Writes an SM2 public key as SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
 *
 * @param key the key
 */
export function writeSm2PublicKey(key: Sm2PublicKey): string {
  return pemEncode("PUBLIC KEY", encodeEcPublicKey({ curve: "sm2", point: key.toBytes() }));
}

/** A P-256 key pair as bytes (for the standard certificate pair; the TLS data path uses Deno's native TLS). */
export interface P256KeyPair {
  /** The 32-byte scalar. */
  readonly d: Uint8Array;
  /** The uncompressed public point. */
  readonly publicKey: Uint8Array;
}

/** Generates a P-256 key pair. */
export function generateP256KeyPair(): P256KeyPair {
  const d = p256.utils.randomSecretKey();
  return { d, publicKey: p256.getPublicKey(d, false) };
}

/**
 * Writes a P-256 private key as PKCS#8 PEM.
 *
 * @param key the key pair
 */
export function writeP256PrivateKey(key: P256KeyPair): string {
  return pemEncode("PRIVATE KEY", encodeEcPrivateKeyPkcs8({ curve: "p256", d: key.d, publicKey: key.publicKey }));
}

/**
 * Reads a P-256 private key (PKCS#8 or SEC1, PEM or DER).
 *
 * @param input PEM text or DER bytes
 */
export function readP256PrivateKey(input: string | Uint8Array): P256KeyPair {
  const data = decodeEcPrivateKey(input);
  if (data.curve !== "p256") throw new DerError(`private key: expected a P-256 key, found ${data.curve}`);
  return { d: data.d, publicKey: p256.getPublicKey(data.d, false) };
}
