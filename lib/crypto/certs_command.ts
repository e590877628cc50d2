/**
 * `ferry certs`: writes a test PKI as PEM files. With `--gm`, an SM2 root and the TLCP double certificates
 * (signing + encryption) and TLS 1.3 SM2 certificates for a server and a client, plus the standard P-256 pair;
 * without it, only the P-256 pair.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { generateP256KeyPair, type P256KeyPair, writeP256PrivateKey, writeSm2PrivateKey } from "./pem.ts";
import { Sm2PrivateKey } from "./sm2.ts";
import type { Certificate, KeyUsageName } from "./x509.ts";
import {
  issueCertificate,
  type IssuedCertificate,
  type NameSpec,
  p256CertificateSigner,
  sm2CertificateSigner,
} from "./x509_issue.ts";

const HELP = `Usage: ferry certs [--gm] [--out DIR] [--host NAME]... [--ip ADDR]...

Writes a test PKI as PEM files into DIR (default ./certs; created if missing; existing files are replaced).

  --gm          also write the SM2 (GM) PKI:
                  ca.crt ca.key                       SM2 root CA (self-signed, 10 years)
                  server_sign.crt server_sign.key     TLCP server signing certificate (digitalSignature)
                  server_enc.crt server_enc.key       TLCP server encryption certificate
                                                      (keyEncipherment, keyAgreement, dataEncipherment)
                  server.crt server.key               TLS 1.3 (RFC 8998) server certificate
                  client_sign.* client_enc.* client.* the same for a client
  --out DIR     output directory (default: certs)
  --host NAME   a DNS name for the server certificates (default: localhost); repeatable
  --ip ADDR     an IP address for the server certificates (default: 127.0.0.1); repeatable
  -h, --help    show this text

Always written: ca_ecdsa.crt ca_ecdsa.key server_ecdsa.crt server_ecdsa.key (P-256, ECDSA-SHA256) for
standard TLS clients. Leaf certificates are valid for 2 years, the roots for 10, starting an hour ago.
SM2 certificates are signed with the default ID 1234567812345678; check them with:
  openssl verify -vfyopt distid:1234567812345678 -CAfile ca.crt server_sign.crt
`;

const HOUR = 3600_000;
const YEAR = 365 * 24 * HOUR;

/** The files written by {@link generateTestPki}, by name, as PEM. */
export type TestPkiFiles = Record<string, string>;

/** Options for {@link generateTestPki}. */
export interface TestPkiOptions {
  /** Include the SM2 PKI. */
  gm: boolean;
  /** DNS names for server certificates. */
  hosts: readonly string[];
  /** IP addresses for server certificates. */
  ips: readonly string[];
  /** Start of validity; default one hour ago. */
  now?: Date;
}

/**
 * Generates the test PKI in memory and returns file name → PEM text.
 *
 * @param options which PKI and which names
 */
export function generateTestPki(options: TestPkiOptions): TestPkiFiles {
  const now = options.now ?? new Date();
  const notBefore = new Date(now.getTime() - HOUR);
  const rootUntil = new Date(now.getTime() + 10 * YEAR);
  const leafUntil = new Date(now.getTime() + 2 * YEAR);
  const files: TestPkiFiles = {};

  if (options.gm) {
    const caKey = Sm2PrivateKey.generate();
    const ca = issueCertificate({
      subject: [["C", "CN"], ["O", "Ferry"], ["CN", "Ferry Test SM2 Root CA"]],
      publicKey: { curve: "sm2", point: caKey.publicKey.toBytes() },
      signer: sm2CertificateSigner(caKey),
      notBefore,
      notAfter: rootUntil,
      ca: true,
      keyUsage: ["keyCertSign", "crlSign"],
    });
    files["ca.crt"] = ca.pem;
    files["ca.key"] = writeSm2PrivateKey(caKey);
    const leaf = (
      name: string,
      cn: string,
      keyUsage: KeyUsageName[],
      extKeyUsage: string[],
      sans: { dns: readonly string[]; ip: readonly string[] },
    ) => {
      const key = Sm2PrivateKey.generate();
      const subject: NameSpec = [["C", "CN"], ["O", "Ferry"], ["CN", cn]];
      const cert = issueSm2Leaf(ca.certificate, caKey, key, subject, { notBefore, notAfter: leafUntil }, {
        keyUsage,
        extKeyUsage,
        sans,
      });
      files[`${name}.crt`] = cert.pem;
      files[`${name}.key`] = writeSm2PrivateKey(key);
    };
    const serverSans = { dns: options.hosts, ip: options.ips };
    const clientSans = { dns: [] as string[], ip: [] as string[] };
    const serverAuth = "1.3.6.1.5.5.7.3.1";
    const clientAuth = "1.3.6.1.5.5.7.3.2";
    const enc: KeyUsageName[] = ["keyEncipherment", "keyAgreement", "dataEncipherment"];
    const serverCn = options.hosts[0] ?? options.ips[0] ?? "localhost";
    leaf("server_sign", serverCn, ["digitalSignature"], [serverAuth], serverSans);
    leaf("server_enc", serverCn, enc, [serverAuth], serverSans);
    leaf("server", serverCn, ["digitalSignature"], [serverAuth], serverSans);
    leaf("client_sign", "Ferry Test Client", ["digitalSignature"], [clientAuth], clientSans);
    leaf("client_enc", "Ferry Test Client", enc, [clientAuth], clientSans);
    leaf("client", "Ferry Test Client", ["digitalSignature"], [clientAuth], clientSans);
  }

  const caKey = generateP256KeyPair();
  const ca = issueCertificate({
    subject: [["O", "Ferry"], ["CN", "Ferry Test ECDSA Root CA"]],
    publicKey: { curve: "p256", point: caKey.publicKey },
    signer: p256CertificateSigner(caKey),
    notBefore,
    notAfter: rootUntil,
    ca: true,
    keyUsage: ["keyCertSign", "crlSign"],
  });
  files["ca_ecdsa.crt"] = ca.pem;
  files["ca_ecdsa.key"] = writeP256PrivateKey(caKey);
  const serverKey: P256KeyPair = generateP256KeyPair();
  const server = issueCertificate({
    subject: [["O", "Ferry"], ["CN", options.hosts[0] ?? options.ips[0] ?? "localhost"]],
    publicKey: { curve: "p256", point: serverKey.publicKey },
    issuer: ca.certificate,
    signer: p256CertificateSigner(caKey),
    notBefore,
    notAfter: leafUntil,
    keyUsage: ["digitalSignature"],
    extKeyUsage: ["1.3.6.1.5.5.7.3.1"],
    dnsNames: options.hosts,
    ipAddresses: options.ips,
  });
  files["server_ecdsa.crt"] = server.pem;
  files["server_ecdsa.key"] = writeP256PrivateKey(serverKey);
  return files;
}

function issueSm2Leaf(
  ca: Certificate,
  caKey: Sm2PrivateKey,
  key: Sm2PrivateKey,
  subject: NameSpec,
  validity: { notBefore: Date; notAfter: Date },
  ext: { keyUsage: KeyUsageName[]; extKeyUsage: string[]; sans: { dns: readonly string[]; ip: readonly string[] } },
): IssuedCertificate {
  // No basicConstraints on leaves: some TLCP stacks reject an empty one.
  return issueCertificate({
    subject,
    publicKey: { curve: "sm2", point: key.publicKey.toBytes() },
    issuer: ca,
    signer: sm2CertificateSigner(caKey),
    notBefore: validity.notBefore,
    notAfter: validity.notAfter,
    keyUsage: ext.keyUsage,
    extKeyUsage: ext.extKeyUsage,
    dnsNames: ext.sans.dns,
    ipAddresses: ext.sans.ip,
  });
}

/**
 * Runs `ferry certs ARGS`: parses flags, writes the files, prints a summary. Returns the exit code (0 on
 * success, 2 on a usage error, 1 on an I/O error).
 *
 * @param args the arguments after `certs`
 */
export async function runCertsCommand(args: string[]): Promise<number> {
  let values: { gm?: boolean; out?: string; host?: string[]; ip?: string[]; help?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        gm: { type: "boolean" },
        out: { type: "string" },
        host: { type: "string", multiple: true },
        ip: { type: "string", multiple: true },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    console.error(`certs: ${e instanceof Error ? e.message : String(e)}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const out = values.out ?? "certs";
  const files = generateTestPki({
    gm: values.gm ?? false,
    hosts: values.host ?? ["localhost"],
    ips: values.ip ?? ["127.0.0.1"],
  });
  try {
    await Deno.mkdir(out, { recursive: true });
    for (const [name, pem] of Object.entries(files)) {
      await Deno.writeTextFile(join(out, name), pem, { mode: name.endsWith(".key") ? 0o600 : 0o644 });
    }
  } catch (e) {
    console.error(`certs: cannot write to "${out}": ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
  const names = Object.keys(files);
  console.log(`certs: wrote ${names.length} files to ${out}: ${names.join(" ")}`);
  if (values.gm) {
    console.log(
      `certs: check with: openssl verify -vfyopt distid:1234567812345678 -CAfile ${join(out, "ca.crt")} ${
        join(out, "server_sign.crt")
      }`,
    );
  }
  return 0;
}
