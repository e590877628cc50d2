import { deepStrictEqual as assertEquals, ok, throws as assertThrows } from "node:assert/strict";
import { generateP256KeyPair, pemEncode, publicKeyName } from "./pem.ts";
import { Sm2PrivateKey } from "./sm2.ts";
import { openssl } from "./testdata/oracle.ts";
import {
  canonicalIp,
  type Certificate,
  CERTIFICATE_CACHE_SIZE,
  CertificateError,
  type CertificateErrorCode,
  certificateSm2PublicKey,
  checkHostname,
  parseCertificate,
  parseCertificates,
  verifyCertificateChain,
  verifyCertificateSignature,
} from "./x509.ts";
import { issueCertificate, p256CertificateSigner, sm2CertificateSigner } from "./x509_issue.ts";

const HOUR = 3600_000;
const now = new Date();
const past = new Date(now.getTime() - HOUR);
const future = new Date(now.getTime() + 365 * 24 * HOUR);

function sm2Ca(cn = "Test SM2 Root", key = Sm2PrivateKey.generate()) {
  const cert = issueCertificate({
    subject: [["O", "Ferry"], ["CN", cn]],
    publicKey: { curve: "sm2", point: key.publicKey.toBytes() },
    signer: sm2CertificateSigner(key),
    notBefore: past,
    notAfter: future,
    ca: true,
    keyUsage: ["keyCertSign", "crlSign"],
  }).certificate;
  return { cert, key };
}

function sm2Leaf(
  ca: { cert: Certificate; key: Sm2PrivateKey },
  opts: Partial<Parameters<typeof issueCertificate>[0]> = {},
): Certificate {
  const key = Sm2PrivateKey.generate();
  return issueCertificate({
    subject: [["CN", "localhost"]],
    publicKey: { curve: "sm2", point: key.publicKey.toBytes() },
    issuer: ca.cert,
    signer: sm2CertificateSigner(ca.key),
    notBefore: past,
    notAfter: future,
    keyUsage: ["digitalSignature"],
    dnsNames: ["localhost", "*.example.com"],
    ipAddresses: ["127.0.0.1", "::1"],
    ...opts,
  }).certificate;
}

function expectCode(code: CertificateErrorCode, f: () => unknown, message?: RegExp): void {
  assertThrows(f, (e: unknown) => {
    ok(e instanceof CertificateError, `expected CertificateError, got ${e}`);
    assertEquals(e.code, code, e.message);
    if (message) ok(message.test(e.message), e.message);
    return true;
  });
}

Deno.test("parseCertificate reads fields of an issued SM2 certificate", () => {
  const ca = sm2Ca();
  const leaf = sm2Leaf(ca);
  assertEquals(leaf.version, 3);
  assertEquals(leaf.signatureAlgorithm, "1.2.156.10197.1.501");
  assertEquals(leaf.publicKey.curve, "sm2");
  assertEquals(leaf.subject, "CN=localhost");
  assertEquals(leaf.issuer, "O=Ferry, CN=Test SM2 Root");
  assertEquals(leaf.commonName, "localhost");
  assertEquals(leaf.dnsNames, ["localhost", "*.example.com"]);
  assertEquals(leaf.ipAddresses, ["127.0.0.1", "0:0:0:0:0:0:0:1"]);
  assertEquals(leaf.keyUsage, ["digitalSignature"]);
  assertEquals(leaf.basicConstraints, undefined);
  assertEquals(ca.cert.basicConstraints, { ca: true, pathLength: undefined });
  ok(leaf.authorityKeyId && ca.cert.subjectKeyId);
  assertEquals(leaf.authorityKeyId, ca.cert.subjectKeyId);
  ok(verifyCertificateSignature(leaf, ca.cert));
  ok(verifyCertificateSignature(ca.cert, ca.cert));
});

Deno.test("verifyCertificateChain accepts a valid SM2 chain with an intermediate, purpose and host name", () => {
  const root = sm2Ca("Root");
  const interKey = Sm2PrivateKey.generate();
  const inter = issueCertificate({
    subject: [["CN", "Intermediate"]],
    publicKey: { curve: "sm2", point: interKey.publicKey.toBytes() },
    issuer: root.cert,
    signer: sm2CertificateSigner(root.key),
    notBefore: past,
    notAfter: future,
    ca: { pathLength: 0 },
    keyUsage: ["keyCertSign"],
  }).certificate;
  const leaf = sm2Leaf({ cert: inter, key: interKey });
  const chain = verifyCertificateChain(leaf, {
    roots: [root.cert],
    intermediates: [inter],
    hostname: "localhost",
    purpose: "sign",
  });
  assertEquals(chain.map((c) => c.subject), ["CN=localhost", "CN=Intermediate", "O=Ferry, CN=Root"]);
  expectCode("unknown-issuer", () => verifyCertificateChain(leaf, { roots: [root.cert] }), /unknown issuer/);
});

Deno.test("verifyCertificateChain verifies openssl-issued SM2 certificates (distid 1234567812345678)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry_x509_" });
  const o = (args: string[]) => openssl(args.map((a) => a.replaceAll("$D", dir)));
  await o(["genpkey", "-algorithm", "SM2", "-out", "$D/ca.key"]);
  await o([
    ..."req -x509 -new -key $D/ca.key -sm3 -sigopt distid:1234567812345678 -subj /CN=OpenSSL-Root -days 30".split(" "),
    ..."-addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign -out $D/ca.crt"
      .split(" "),
  ]);
  await o(["genpkey", "-algorithm", "SM2", "-out", "$D/leaf.key"]);
  await o("req -new -key $D/leaf.key -subj /CN=leaf.example -sm3 -sigopt distid:1234567812345678 -out $D/leaf.csr"
    .split(" "));
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    "subjectAltName=DNS:*.example.com,IP:10.0.0.1\nkeyUsage=critical,keyEncipherment\n",
  );
  await o([
    ..."x509 -req -in $D/leaf.csr -CA $D/ca.crt -CAkey $D/ca.key -CAcreateserial -sm3".split(" "),
    ..."-sigopt distid:1234567812345678 -vfyopt distid:1234567812345678 -extfile $D/ext.cnf -days 30".split(" "),
    "-out",
    "$D/leaf.crt",
  ]);
  const ca = parseCertificate(await Deno.readTextFile(`${dir}/ca.crt`));
  const leaf = parseCertificate(await Deno.readTextFile(`${dir}/leaf.crt`));
  const chain = verifyCertificateChain(leaf, { roots: [ca], hostname: "a.example.com", purpose: "encrypt" });
  assertEquals(chain.length, 2);
  verifyCertificateChain(leaf, { roots: [ca], hostname: "10.0.0.1" });
  expectCode("key-usage", () => verifyCertificateChain(leaf, { roots: [ca], purpose: "sign" }), /wrong key usage/);
  expectCode("name-mismatch", () => verifyCertificateChain(leaf, { roots: [ca], hostname: "a.b.example.com" }));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("verifyCertificateChain accepts ECDSA P-256 chains issued here and by openssl", async () => {
  const caKey = generateP256KeyPair();
  const ca = issueCertificate({
    subject: [["CN", "P256 Root"]],
    publicKey: { curve: "p256", point: caKey.publicKey },
    signer: p256CertificateSigner(caKey),
    notBefore: past,
    notAfter: future,
    ca: true,
    keyUsage: ["keyCertSign"],
  }).certificate;
  const leafKey = generateP256KeyPair();
  const leaf = issueCertificate({
    subject: [["CN", "p256 leaf"]],
    publicKey: { curve: "p256", point: leafKey.publicKey },
    issuer: ca,
    signer: p256CertificateSigner(caKey),
    notBefore: past,
    notAfter: future,
    dnsNames: ["localhost"],
  }).certificate;
  assertEquals(verifyCertificateChain(leaf, { roots: [ca], hostname: "LOCALHOST" }).length, 2);
  const pem = (await openssl([
    ..."req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null -sha256".split(" "),
    ..."-subj /CN=openssl-p256 -days 2 -addext subjectAltName=DNS:host.test".split(" "),
  ])).out;
  const self = parseCertificates(pem)[0]!;
  assertEquals(self.publicKey.curve, "p256");
  verifyCertificateChain(self, { roots: [self], hostname: "host.test" });
});

Deno.test("verifyCertificateChain rejects expired and not-yet-valid certificates", () => {
  const ca = sm2Ca();
  const leaf = sm2Leaf(ca);
  expectCode(
    "expired",
    () => verifyCertificateChain(leaf, { roots: [ca.cert], now: new Date(future.getTime() + HOUR) }),
    /certificate "CN=localhost": expired at/,
  );
  expectCode(
    "not-yet-valid",
    () => verifyCertificateChain(leaf, { roots: [ca.cert], now: new Date(past.getTime() - HOUR) }),
    /not yet valid/,
  );
  const oldCa = sm2Leaf(ca, { notAfter: new Date(now.getTime() - 1) });
  expectCode("expired", () => verifyCertificateChain(oldCa, { roots: [ca.cert] }));
});

Deno.test("verifyCertificateChain rejects a wrongly signed certificate and an unknown issuer", () => {
  const ca = sm2Ca("Same Name");
  const impostor = sm2Ca("Same Name");
  const forged = sm2Leaf(impostor);
  // Same issuer name, but the authority key id points elsewhere: no matching issuer.
  expectCode("unknown-issuer", () => verifyCertificateChain(forged, { roots: [ca.cert] }));
  // Without key ids to tell them apart, the signature check decides.
  const forgedNoAki = parseCertificate(forged.der);
  const caNoSki = { ...ca.cert, subjectKeyId: undefined };
  expectCode("bad-signature", () => verifyCertificateChain(forgedNoAki, { roots: [caNoSki] }), /bad signature/);
  // A flipped signature byte.
  const leaf = sm2Leaf(ca);
  const tampered = { ...leaf, signature: leaf.signature.map((b, i) => (i === 10 ? b ^ 1 : b)) };
  expectCode("bad-signature", () => verifyCertificateChain(tampered, { roots: [ca.cert] }));
  expectCode("unknown-issuer", () => verifyCertificateChain(leaf, { roots: [sm2Ca("Other").cert] }));
});

Deno.test("verifyCertificateChain enforces key usage for TLCP signing and encryption certificates", () => {
  const ca = sm2Ca();
  const sign = sm2Leaf(ca);
  const enc = sm2Leaf(ca, { keyUsage: ["keyEncipherment", "keyAgreement", "dataEncipherment"] });
  verifyCertificateChain(sign, { roots: [ca.cert], purpose: "sign" });
  verifyCertificateChain(enc, { roots: [ca.cert], purpose: "encrypt" });
  expectCode("key-usage", () => verifyCertificateChain(enc, { roots: [ca.cert], purpose: "sign" }));
  expectCode("key-usage", () => verifyCertificateChain(sign, { roots: [ca.cert], purpose: "encrypt" }));
});

Deno.test("verifyCertificateChain rejects a leaf used as an issuer (not a CA)", () => {
  const ca = sm2Ca();
  const midKey = Sm2PrivateKey.generate();
  const mid = issueCertificate({
    subject: [["CN", "Not A CA"]],
    publicKey: { curve: "sm2", point: midKey.publicKey.toBytes() },
    issuer: ca.cert,
    signer: sm2CertificateSigner(ca.key),
    notBefore: past,
    notAfter: future,
    keyUsage: ["digitalSignature"],
  }).certificate;
  const leaf = sm2Leaf({ cert: mid, key: midKey });
  expectCode("not-ca", () => verifyCertificateChain(leaf, { roots: [ca.cert], intermediates: [mid] }), /is not a CA/);
});

Deno.test("checkHostname matches DNS names, one-label wildcards, IP addresses and CN fallback", () => {
  const ca = sm2Ca();
  const leaf = sm2Leaf(ca);
  checkHostname(leaf, "localhost");
  checkHostname(leaf, "www.example.com");
  checkHostname(leaf, "127.0.0.1");
  checkHostname(leaf, "[::1]");
  for (const bad of ["example.com", "a.b.example.com", "127.0.0.2", "localhost.evil", "10.0.0.1"]) {
    expectCode("name-mismatch", () => checkHostname(leaf, bad), /name mismatch/);
  }
  const cnOnly = sm2Leaf(ca, { dnsNames: [], ipAddresses: [], subject: [["CN", "cn.example"]] });
  checkHostname(cnOnly, "cn.example");
  expectCode("name-mismatch", () => checkHostname(cnOnly, "other.example"));
  assertEquals(canonicalIp("2001:db8::1"), "2001:db8:0:0:0:0:0:1");
  assertEquals(canonicalIp("300.1.1.1"), undefined);
});

Deno.test("parseCertificate rejects malformed DER with a clear error", () => {
  const leaf = sm2Leaf(sm2Ca());
  expectCode("malformed", () => parseCertificate(leaf.der.subarray(0, leaf.der.length - 5)), /malformed DER/);
  expectCode("malformed", () => parseCertificate(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01])), /malformed DER/);
  const trailing = new Uint8Array([...leaf.der, 0]);
  expectCode("malformed", () => parseCertificate(trailing), /trailing bytes/);
  expectCode("malformed", () => parseCertificate("not a pem"), /no CERTIFICATE/);
  // An SM2 public key that is not on the curve: parses, but is rejected when used.
  const der = leaf.der.slice();
  const at = indexOf(der, leaf.publicKey.point);
  der[at + 64]! ^= 1;
  const bad = parseCertificate(der);
  expectCode("malformed", () =>
    verifyCertificateChain(sm2Leaf({ cert: bad, key: Sm2PrivateKey.generate() }), {
      roots: [bad],
      intermediates: [],
    }));
});

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

Deno.test("parseCertificate shares results by DER, keeps its own copy, and evicts the least recently used", () => {
  const ca = sm2Ca("Cache Root");
  const der = sm2Leaf(ca, { subject: [["CN", "cache.test"]], dnsNames: ["cache.test"] }).der;
  const buf = new Uint8Array(der.length + 8);
  buf.set(der, 4);
  const first = parseCertificate(buf.subarray(4, 4 + der.length));
  ok(Object.isFrozen(first) && Object.isFrozen(first.dnsNames));
  buf.fill(0); // the caller reuses its buffer: the cached certificate is unaffected
  assertEquals(first.der, der);
  ok(parseCertificate(der.slice()) === first);
  ok(certificateSm2PublicKey(parseCertificate(der)) === certificateSm2PublicKey(first), "and so is its key");
  ok(verifyCertificateSignature(first, ca.cert));
  for (let i = 0; i < CERTIFICATE_CACHE_SIZE; i++) parseCertificate(sm2Leaf(ca).der);
  const again = parseCertificate(der);
  ok(again !== first);
  assertEquals(again.der, first.der);
  assertEquals(again.subject, first.subject);
});

Deno.test("issueCertificate encodes serial numbers as minimal positive DER INTEGERs", () => {
  const key = Sm2PrivateKey.generate();
  /** The serial's INTEGER content octets: cert SEQUENCE > tbs SEQUENCE > [0] version > INTEGER. */
  const serialOf = (der: Uint8Array): Uint8Array => {
    const skipHeader = (o: number): number => {
      const len = der[o + 1]!;
      return o + 2 + (len & 0x80 ? len & 0x7f : 0);
    };
    let o = skipHeader(skipHeader(0)); // into cert, into tbs
    assertEquals(der[o], 0xa0); // [0] version
    o += 2 + der[o + 1]!;
    assertEquals(der[o], 0x02); // INTEGER
    return der.subarray(o + 2, o + 2 + der[o + 1]!);
  };
  const issue = (serialNumber?: Uint8Array) =>
    issueCertificate({
      subject: [["CN", "serial"]],
      publicKey: { curve: "sm2", point: key.publicKey.toBytes() },
      signer: sm2CertificateSigner(key),
      notBefore: past,
      notAfter: future,
      ...(serialNumber ? { serialNumber } : {}),
    }).der;
  const minimal = (s: Uint8Array) =>
    s.length > 0 && (s.length === 1 || !(s[0] === 0 && !(s[1]! & 0x80))) && !(s[0]! & 0x80);
  assertEquals([...serialOf(issue(new Uint8Array([0, 0, 0x12])))], [0x12]);
  assertEquals([...serialOf(issue(new Uint8Array([0, 0x80, 1])))], [0, 0x80, 1]);
  assertEquals([...serialOf(issue(new Uint8Array([0x80])))], [0, 0x80]);
  // Random serials: 1 in 256 used to start with a 0x00 byte that DER forbids (GmSSL refused those certificates).
  for (let i = 0; i < 600; i++) {
    const s = serialOf(issue());
    ok(minimal(s), `serial ${[...s].map((b) => b.toString(16).padStart(2, "0")).join("")} is not minimal DER`);
  }
});

/** openssl key-generation options for the standard key types. */
const STANDARD_KEYS: Readonly<Record<string, readonly string[]>> = {
  rsa: ["-newkey", "rsa:2048"],
  pss: ["-newkey", "rsa-pss", "-pkeyopt", "rsa_keygen_bits:2048"],
  p384: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
  p521: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"],
  ed25519: ["-newkey", "ed25519"],
  ed448: ["-newkey", "ed448"],
};

/** Makes `$D/<name>.crt/.key` with openssl: self-signed CA, or signed by `ca` with `sign` options. */
async function opensslCert(
  dir: string,
  name: string,
  key: keyof typeof STANDARD_KEYS,
  options: { ca?: string; sign?: string[]; ext?: string } = {},
): Promise<Certificate> {
  const D = (s: string) => `${dir}/${s}`;
  const subj = `/O=Ferry/CN=${name}`;
  if (!options.ca) {
    await openssl([
      ..."req -x509 -new -nodes -days 2".split(" "),
      ...STANDARD_KEYS[key]!,
      ...(options.sign ?? []),
      ...["-keyout", D(`${name}.key`), "-out", D(`${name}.crt`), "-subj", subj],
      ...["-addext", "basicConstraints=critical,CA:true", "-addext", "keyUsage=critical,keyCertSign"],
    ]);
  } else {
    await openssl([
      ..."req -new -nodes".split(" "),
      ...STANDARD_KEYS[key]!,
      ...["-keyout", D(`${name}.key`), "-out", D(`${name}.csr`), "-subj", subj],
    ]);
    await Deno.writeTextFile(D(`${name}.ext`), options.ext ?? `subjectAltName=DNS:${name}.test,IP:10.0.0.7\n`);
    await openssl([
      ...["x509", "-req", "-in", D(`${name}.csr`), "-CA", D(`${options.ca}.crt`), "-CAkey", D(`${options.ca}.key`)],
      ...["-CAcreateserial", "-days", "2", "-extfile", D(`${name}.ext`), "-out", D(`${name}.crt`)],
      ...(options.sign ?? []),
    ]);
  }
  return parseCertificate(await Deno.readTextFile(D(`${name}.crt`)));
}

Deno.test("parseCertificate reads any key algorithm's certificate, keeping the key opaque with its OID", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry_x509_keys_" });
  const cases = [
    ["rsa", "1.2.840.113549.1.1.1", undefined, "RSA"],
    ["pss", "1.2.840.113549.1.1.10", undefined, "RSA-PSS"],
    ["p384", "1.2.840.10045.2.1", "1.3.132.0.34", "P-384"],
    ["p521", "1.2.840.10045.2.1", "1.3.132.0.35", "P-521"],
    ["ed25519", "1.3.101.112", undefined, "Ed25519"],
    ["ed448", "1.3.101.113", undefined, "Ed448"],
  ] as const;
  const root = await opensslCert(dir, "root", "p384", { sign: ["-sha384"] });
  for (const [key, algorithm, parameters, name] of cases) {
    const leaf = await opensslCert(dir, key, key, { ca: "root", sign: ["-sha384"] });
    assertEquals(leaf.subject, `O=Ferry, CN=${key}`);
    assertEquals(leaf.dnsNames, [`${key}.test`]);
    assertEquals(leaf.ipAddresses, ["10.0.0.7"]);
    ok(leaf.notBefore.getTime() <= Date.now() && leaf.notAfter.getTime() > Date.now());
    assertEquals(
      [leaf.publicKey.algorithm, leaf.publicKey.parameters, leaf.publicKey.curve],
      [algorithm, parameters, undefined],
    );
    assertEquals(publicKeyName(leaf.publicKey), name);
    // The opaque key is the certificate's own SubjectPublicKeyInfo: openssl reads the same key from it.
    const spki = (await openssl(["x509", "-in", `${dir}/${key}.crt`, "-noout", "-pubkey"])).out;
    assertEquals(pemEncode("PUBLIC KEY", leaf.publicKey.der), spki);
    assertEquals(verifyCertificateChain(leaf, { roots: [root], hostname: `${key}.test` }).length, 2);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("verifyCertificateChain checks RSA PKCS#1, RSA-PSS, ECDSA SHA-256/384/512 and EdDSA signatures", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry_x509_sigs_" });
  // Each root signs a leaf of another key type, so every signature algorithm is checked with its issuer's key.
  const chains = [
    ["rsa", [], "ed25519", "1.2.840.113549.1.1.11"],
    ["rsa", ["-sha512"], "p384", "1.2.840.113549.1.1.13"],
    [
      "rsa",
      ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32", "-sha256"],
      "p521",
      "1.2.840.113549.1.1.10",
    ],
    ["pss", ["-sha384", "-sigopt", "rsa_pss_saltlen:48"], "rsa", "1.2.840.113549.1.1.10"],
    ["p384", ["-sha384"], "rsa", "1.2.840.10045.4.3.3"],
    ["p521", ["-sha512"], "ed448", "1.2.840.10045.4.3.4"],
    ["p384", ["-sha256"], "pss", "1.2.840.10045.4.3.2"],
    ["ed25519", [], "p384", "1.3.101.112"],
    ["ed448", [], "rsa", "1.3.101.113"],
  ] as const;
  for (const [i, [caKey, sign, leafKey, sigAlg]] of chains.entries()) {
    const ca = await opensslCert(dir, `ca${i}`, caKey, { sign: [...sign] });
    const leaf = await opensslCert(dir, `leaf${i}`, leafKey, { ca: `ca${i}`, sign: [...sign] });
    assertEquals(leaf.signatureAlgorithm, sigAlg, `chain ${i}`);
    ok(verifyCertificateSignature(leaf, ca), `chain ${i}: ${caKey} signs ${leafKey}`);
    ok(verifyCertificateSignature(ca, ca), `chain ${i}: self-signed ${caKey}`);
    assertEquals(verifyCertificateChain(leaf, { roots: [ca] }).map((c) => c.subject), [
      `O=Ferry, CN=leaf${i}`,
      `O=Ferry, CN=ca${i}`,
    ]);
    // One flipped bit in the signature.
    const der = leaf.der.slice();
    der[der.length - 3]! ^= 1;
    expectCode("bad-signature", () => verifyCertificateChain(parseCertificate(der), { roots: [ca] }), /bad signature/);
  }
  // An issuer whose key does not fit the signature algorithm did not sign it: false, not an exception.
  const leaf0 = parseCertificate(await Deno.readTextFile(`${dir}/leaf0.crt`)); // RSA-signed
  for (const other of ["p384", "ed25519", "pss"] as const) {
    assertEquals(verifyCertificateSignature(leaf0, await opensslCert(dir, `other_${other}`, other)), false, other);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("verifyCertificateChain refuses SHA-1 signatures as unsupported (as rustls does)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry_x509_sha1_" });
  const ca = await opensslCert(dir, "ca", "rsa");
  const leaf = await opensslCert(dir, "leaf", "rsa", { ca: "ca", sign: ["-sha1"] });
  expectCode(
    "unsupported",
    () => verifyCertificateChain(leaf, { roots: [ca] }),
    /unsupported signature algorithm 1\.2\.840\.113549\.1\.1\.5/,
  );
  await Deno.remove(dir, { recursive: true });
});
