/**
 * Test certificates for the TLS 1.3 engine tests, generated once per test process with the project's test-PKI
 * generator: the SM2 PKI (`server.crt` for TLS 1.3 GM, `client.crt`), the ECDSA P-256 pair, an ECDSA client
 * certificate, a second ECDSA server for SNI tests and an expired ECDSA server.
 *
 * @module
 */

import {
  type Certificate,
  generateP256KeyPair,
  generateTestPki,
  issueCertificate,
  p256CertificateSigner,
  parseCertificate,
  readP256PrivateKey,
  writeP256PrivateKey,
} from "../../../../crypto/mod.ts";
import { loadTls13Credential, type Tls13Credential } from "../credentials.ts";

/** PEM files by name (as `ferry certs --gm` writes them) plus the extras below. */
export interface TestPki {
  readonly files: Readonly<Record<string, string>>;
  readonly sm2Root: Certificate;
  readonly ecdsaRoot: Certificate;
  readonly otherRoot: Certificate;
  /** SM2 server (localhost, gm.test, 127.0.0.1). */
  readonly sm2Server: Tls13Credential;
  /** ECDSA server (localhost, gm.test, 127.0.0.1). */
  readonly ecdsaServer: Tls13Credential;
  /** ECDSA server for `other.test`, under `otherRoot`. */
  readonly otherServer: Tls13Credential;
  /** Expired ECDSA server (localhost) under `expiredRoot`. */
  readonly expiredServer: Tls13Credential;
  readonly expiredRoot: Certificate;
  /** SM2 client certificate under `sm2Root`. */
  readonly sm2Client: Tls13Credential;
  /** ECDSA client certificate under `ecdsaRoot`. */
  readonly ecdsaClient: Tls13Credential;
}

let cached: TestPki | undefined;

const YEAR = 365 * 24 * 3600_000;

/** The test PKI (generated on first use). */
export function testPki(): TestPki {
  if (cached) return cached;
  const main = generateTestPki({ gm: true, hosts: ["localhost", "gm.test"], ips: ["127.0.0.1"] });
  const other = generateTestPki({ gm: false, hosts: ["other.test"], ips: [] });
  const expired = generateTestPki({ gm: false, hosts: ["localhost"], ips: [], now: new Date(Date.now() - 5 * YEAR) });
  const caKey = readP256PrivateKey(main["ca_ecdsa.key"]!);
  const caCert = parseCertificate(main["ca_ecdsa.crt"]!);
  const clientKey = generateP256KeyPair();
  const client = issueCertificate({
    subject: [["O", "Ferry"], ["CN", "Ferry Test ECDSA Client"]],
    publicKey: { curve: "p256", point: clientKey.publicKey },
    issuer: caCert,
    signer: p256CertificateSigner(caKey),
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + YEAR),
    keyUsage: ["digitalSignature"],
    extKeyUsage: ["1.3.6.1.5.5.7.3.2"],
  });
  const files: Record<string, string> = {
    ...main,
    "client_ecdsa.crt": client.pem,
    "client_ecdsa.key": writeP256PrivateKey(clientKey),
    "other_ecdsa.crt": other["server_ecdsa.crt"]!,
    "other_ecdsa.key": other["server_ecdsa.key"]!,
    "other_ca_ecdsa.crt": other["ca_ecdsa.crt"]!,
  };
  cached = {
    files,
    sm2Root: parseCertificate(main["ca.crt"]!),
    ecdsaRoot: caCert,
    otherRoot: parseCertificate(other["ca_ecdsa.crt"]!),
    sm2Server: loadTls13Credential(main["server.crt"]!, main["server.key"]!),
    ecdsaServer: loadTls13Credential(main["server_ecdsa.crt"]!, main["server_ecdsa.key"]!),
    otherServer: loadTls13Credential(other["server_ecdsa.crt"]!, other["server_ecdsa.key"]!),
    expiredServer: loadTls13Credential(expired["server_ecdsa.crt"]!, expired["server_ecdsa.key"]!),
    expiredRoot: parseCertificate(expired["ca_ecdsa.crt"]!),
    sm2Client: loadTls13Credential(main["client.crt"]!, main["client.key"]!),
    ecdsaClient: loadTls13Credential(client.pem, files["client_ecdsa.key"]!),
  };
  return cached;
}
