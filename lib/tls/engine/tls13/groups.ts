/**
 * TLS 1.3 key-share groups: `x25519` and `secp256r1` on `node:crypto` (native), and `curveSM2` (RFC 8998: a
 * 65-byte uncompressed point; the shared secret is the x-coordinate of the SM2 ECDH product) on the project's
 * SM2. An invalid peer share is an `illegal_parameter` failure.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createECDH, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from "node:crypto";
import { readBig256, Sm2PrivateKey, Sm2PublicKey } from "../../../crypto/mod.ts";
import { fatal } from "./_codec.ts";

/** Names of the supported key-share groups. */
export type Tls13GroupName = "x25519" | "secp256r1" | "curveSM2";

/** One side's ephemeral key for a group. */
export interface KeyShareKey {
  /** The key_exchange bytes to send. */
  readonly publicKey: Uint8Array;
  /** The shared secret with the peer's key_exchange bytes; throws `illegal_parameter` for an invalid share. */
  deriveShared(peer: Uint8Array): Uint8Array;
}

/** A named group: code point, name and ephemeral key generator. */
export interface KeyShareGroup {
  /** The NamedGroup code point. */
  readonly id: number;
  /** The name. */
  readonly name: Tls13GroupName;
  /** Generates an ephemeral key. */
  generate(): KeyShareKey;
}

function allZero(b: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < b.length; i++) acc |= b[i]!;
  return acc === 0;
}

function toBytes(b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

class X25519Key implements KeyShareKey {
  readonly publicKey: Uint8Array;
  readonly #private: KeyObject;

  constructor() {
    const { publicKey, privateKey } = generateKeyPairSync("x25519");
    this.#private = privateKey;
    const jwk = publicKey.export({ format: "jwk" });
    this.publicKey = toBytes(Buffer.from(jwk.x ?? "", "base64url"));
  }

  deriveShared(peer: Uint8Array): Uint8Array {
    if (peer.length !== 32) fatal("illegal_parameter", `x25519 key share must be 32 bytes, got ${peer.length}`);
    let shared: Uint8Array;
    try {
      const pub = createPublicKey({
        key: { kty: "OKP", crv: "X25519", x: Buffer.from(peer).toString("base64url") },
        format: "jwk",
      });
      shared = toBytes(diffieHellman({ privateKey: this.#private, publicKey: pub }));
    } catch (e) {
      fatal("illegal_parameter", "x25519 key share is invalid", e);
    }
    // RFC 8446 §7.4.2: an all-zero result means a small-order point.
    if (allZero(shared)) fatal("illegal_parameter", "x25519 key share is a small-order point");
    return shared;
  }
}

class P256Key implements KeyShareKey {
  readonly publicKey: Uint8Array;
  readonly #ecdh = createECDH("prime256v1");

  constructor() {
    this.#ecdh.generateKeys();
    this.publicKey = toBytes(this.#ecdh.getPublicKey());
  }

  deriveShared(peer: Uint8Array): Uint8Array {
    if (peer.length !== 65 || peer[0] !== 4) {
      fatal("illegal_parameter", "secp256r1 key share must be an uncompressed point (65 bytes)");
    }
    try {
      return toBytes(this.#ecdh.computeSecret(peer));
    } catch (e) {
      fatal("illegal_parameter", "secp256r1 key share is not on the curve", e);
    }
  }
}

class Sm2Key implements KeyShareKey {
  readonly publicKey: Uint8Array;
  readonly #key = Sm2PrivateKey.generate();

  constructor() {
    this.publicKey = this.#key.publicKey.toBytes();
  }

  deriveShared(peer: Uint8Array): Uint8Array {
    if (peer.length !== 65 || peer[0] !== 4) {
      fatal("illegal_parameter", "curveSM2 key share must be an uncompressed point (65 bytes)");
    }
    let point: Sm2PublicKey;
    try {
      // fromAffine, not fromBytes: an ephemeral share must not take a slot in the decoded-key cache, which is
      // meant for long-lived keys (CA and certificate keys with precomputed tables).
      const dv = new DataView(peer.buffer, peer.byteOffset, 65);
      point = Sm2PublicKey.fromAffine(readBig256(dv, 1), readBig256(dv, 33));
    } catch (e) {
      fatal("illegal_parameter", "curveSM2 key share is not on the curve", e);
    }
    return this.#key.ecdh(point);
  }
}

/** Every group by name. */
export const TLS13_GROUPS: Readonly<Record<Tls13GroupName, KeyShareGroup>> = {
  x25519: { id: 0x001d, name: "x25519", generate: () => new X25519Key() },
  secp256r1: { id: 0x0017, name: "secp256r1", generate: () => new P256Key() },
  curveSM2: { id: 0x0029, name: "curveSM2", generate: () => new Sm2Key() },
};

/** Default preference: x25519 (fastest here), secp256r1, then curveSM2. */
export const DEFAULT_TLS13_GROUPS: readonly Tls13GroupName[] = ["x25519", "secp256r1", "curveSM2"];

/** The group with code point `id`, if supported. */
export function groupById(id: number): KeyShareGroup | undefined {
  for (const g of Object.values(TLS13_GROUPS)) if (g.id === id) return g;
  return undefined;
}

/** Resolves names to groups, rejecting unknown names and empty lists with a `RangeError`. */
export function resolveGroups(names: readonly string[] | undefined): KeyShareGroup[] {
  const list = names ?? DEFAULT_TLS13_GROUPS;
  if (list.length === 0) throw new RangeError("tls13: group list is empty");
  return list.map((n) => {
    const g = (TLS13_GROUPS as Record<string, KeyShareGroup | undefined>)[n];
    if (!g) throw new RangeError(`tls13: unknown group "${n}"`);
    return g;
  });
}
