/**
 * Peer certificate-chain verification for both roles, with certificate errors mapped to TLS alerts. Private to
 * this folder.
 *
 * @module
 */

import {
  type Certificate,
  CertificateError,
  parseCertificate,
  publicKeyName,
  verifyCertificateChain,
} from "../../../crypto/mod.ts";
import type { TlsAlertDescription } from "../../../api/tls.ts";
import { fatal } from "./_codec.ts";

/** How to check a peer chain. */
export interface PeerChainPolicy {
  /** Trust anchors. */
  readonly roots: readonly Certificate[];
  /** False: parse only (the CertificateVerify signature is still checked by the caller). */
  readonly verify: boolean;
  /** The name the leaf must carry (client side: the server name). */
  readonly hostname: string | undefined;
  /** Validity time. */
  readonly now: Date;
}

function alertFor(e: CertificateError): TlsAlertDescription {
  switch (e.code) {
    case "expired":
    case "not-yet-valid":
      return "certificate_expired";
    case "unknown-issuer":
      return "unknown_ca";
    case "unsupported":
      return "unsupported_certificate";
    default:
      return "bad_certificate";
  }
}

/** Parses and (unless disabled) verifies a peer chain (DER, leaf first); returns the parsed leaf. */
export function verifyPeerChain(chain: readonly Uint8Array[], policy: PeerChainPolicy): Certificate {
  let parsed: Certificate[];
  try {
    parsed = chain.map((der) => parseCertificate(der));
  } catch (e) {
    fatal(
      e instanceof CertificateError && e.code === "unsupported" ? "unsupported_certificate" : "bad_certificate",
      `peer certificate does not parse: ${e instanceof Error ? e.message : String(e)}`,
      e,
    );
  }
  const leaf = parsed[0]!;
  if (leaf.publicKey.curve !== "sm2" && leaf.publicKey.curve !== "p256") {
    fatal("unsupported_certificate", `peer certificate key ${publicKeyName(leaf.publicKey)} is not supported`);
  }
  if (!policy.verify) return leaf;
  try {
    const options = {
      roots: policy.roots,
      intermediates: parsed.slice(1),
      now: policy.now,
      purpose: "sign" as const,
      ...(policy.hostname !== undefined ? { hostname: policy.hostname } : {}),
    };
    verifyCertificateChain(leaf, options);
  } catch (e) {
    if (e instanceof CertificateError) fatal(alertFor(e), `peer certificate rejected: ${e.message}`, e);
    fatal("bad_certificate", `peer certificate rejected: ${e instanceof Error ? e.message : String(e)}`, e);
  }
  return leaf;
}
