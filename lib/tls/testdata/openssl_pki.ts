/**
 * Test PKI for standard key types, made by the `openssl` command at test time (an independent issuer: nothing
 * here goes through Ferry's own certificate code). One CA per key type signs that type's server and client
 * certificates; a separate "stranger" CA signs a client certificate nobody trusts.
 *
 * @module
 */

/** The key types standard TLS (rustls, OpenSSL) serves with, as the tests name them. */
export type KeyType = "rsa2048" | "rsa4096" | "p256" | "p384" | "ed25519";

/** Every {@link KeyType}, in a stable order. */
export const KEY_TYPES: readonly KeyType[] = ["rsa2048", "rsa4096", "p256", "p384", "ed25519"];

/** Human names for test titles. */
export const KEY_TYPE_NAMES: Readonly<Record<KeyType, string>> = {
  rsa2048: "RSA-2048",
  rsa4096: "RSA-4096",
  p256: "ECDSA P-256",
  p384: "ECDSA P-384",
  ed25519: "Ed25519",
};

const NEW_KEY: Readonly<Record<KeyType, readonly string[]>> = {
  rsa2048: ["-newkey", "rsa:2048"],
  rsa4096: ["-newkey", "rsa:4096"],
  p256: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
  p384: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
  ed25519: ["-newkey", "ed25519"],
};

/** The digest the CA signs with (none for EdDSA); P-384 signs with SHA-384 as its strength asks. */
const DIGEST: Readonly<Record<KeyType, readonly string[]>> = {
  rsa2048: ["-sha256"],
  rsa4096: ["-sha512"],
  p256: ["-sha256"],
  p384: ["-sha384"],
  ed25519: [],
};

/**
 * The files written into `dir` (all PEM, keys unencrypted), for each key type `t`:
 * `ca_<t>.crt/.key`, `server_<t>.crt/.key` (SANs `localhost`, `<t>.example.com`, `127.0.0.1`; serverAuth),
 * `client_<t>.crt/.key` (SAN `client-<t>.example`; clientAuth); plus `cas.crt` (every CA),
 * `stranger_ca.crt` and `stranger.crt/.key` (RSA-2048 client certificate under the untrusted CA).
 */
export interface OpensslPki {
  readonly dir: string;
  /** `dir/name`. */
  path(name: string): string;
  /** The text of `dir/name`. */
  read(name: string): string;
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args: [...args], cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

async function issue(
  cwd: string,
  options: { name: string; type: KeyType; caName: string; caType: KeyType; subject: string; ext: string },
): Promise<void> {
  const { name, type } = options;
  await openssl([
    "req",
    "-new",
    ...NEW_KEY[type],
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-subj",
    options.subject,
    "-out",
    `${name}.csr`,
  ], cwd);
  await Deno.writeTextFile(`${cwd}/${name}.ext`, options.ext);
  await openssl([
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${options.caName}.crt`,
    "-CAkey",
    `${options.caName}.key`,
    "-CAcreateserial",
    "-days",
    "2",
    ...DIGEST[options.caType],
    "-extfile",
    `${name}.ext`,
    "-out",
    `${name}.crt`,
  ], cwd);
}

async function makeCa(cwd: string, name: string, type: KeyType, cn: string): Promise<void> {
  await openssl([
    "req",
    "-x509",
    "-new",
    ...NEW_KEY[type],
    ...DIGEST[type],
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.crt`,
    "-days",
    "2",
    "-subj",
    `/O=Ferry Test/CN=${cn}`,
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ], cwd);
}

/**
 * Generates the PKI (see {@link OpensslPki}) into a new temporary directory. Takes a few seconds (RSA-4096).
 *
 * @param types the key types to make (default all)
 */
export async function generateOpensslPki(types: readonly KeyType[] = KEY_TYPES): Promise<OpensslPki> {
  const dir = await Deno.makeTempDir({ prefix: "ferry-keytypes-" });
  await Promise.all(types.map(async (t) => {
    await makeCa(dir, `ca_${t}`, t, `${KEY_TYPE_NAMES[t]} Root`);
    await issue(dir, {
      name: `server_${t}`,
      type: t,
      caName: `ca_${t}`,
      caType: t,
      subject: `/O=Ferry Test/CN=server ${t}`,
      ext: `subjectAltName=DNS:localhost,DNS:${t}.example.com,IP:127.0.0.1\n` +
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n" +
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n",
    });
    await issue(dir, {
      name: `client_${t}`,
      type: t,
      caName: `ca_${t}`,
      caType: t,
      subject: `/O=Ferry Test/CN=client ${t}`,
      ext: `subjectAltName=DNS:client-${t}.example\n` +
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n" +
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n",
    });
  }));
  await makeCa(dir, "stranger_ca", "rsa2048", "Stranger Root");
  await issue(dir, {
    name: "stranger",
    type: "rsa2048",
    caName: "stranger_ca",
    caType: "rsa2048",
    subject: "/O=Elsewhere/CN=stranger",
    ext: "subjectAltName=DNS:client-stranger.example\nextendedKeyUsage=clientAuth\n",
  });
  const cas = await Promise.all(types.map((t) => Deno.readTextFile(`${dir}/ca_${t}.crt`)));
  await Deno.writeTextFile(`${dir}/cas.crt`, cas.join(""));
  return {
    dir,
    path: (name) => `${dir}/${name}`,
    read: (name) => Deno.readTextFileSync(`${dir}/${name}`),
  };
}
