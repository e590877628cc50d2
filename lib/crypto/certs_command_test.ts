import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { runCertsCommand } from "./certs_command.ts";
import { readSm2PrivateKey } from "./pem.ts";
import { run } from "./testdata/oracle.ts";
import { parseCertificate, verifyCertificateChain } from "./x509.ts";

async function quiet<T>(f: () => Promise<T>): Promise<T> {
  const log = console.log;
  const err = console.error;
  console.log = () => {};
  console.error = () => {};
  try {
    return await f();
  } finally {
    console.log = log;
    console.error = err;
  }
}

Deno.test("runCertsCommand --gm writes a PKI that openssl verifies and whose keys load", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry_certs_" });
  assertEquals(await quiet(() => runCertsCommand(["--gm", "--out", dir])), 0);
  const sm2Leaves = ["server_sign", "server_enc", "server", "client_sign", "client_enc", "client"];
  for (const name of sm2Leaves) {
    const r = await run("openssl", [
      "verify",
      "-vfyopt",
      "distid:1234567812345678",
      "-CAfile",
      `${dir}/ca.crt`,
      `${dir}/${name}.crt`,
    ]);
    assertEquals(r.code, 0, `${name}: ${r.out}${r.err}`);
    ok(r.out.includes(": OK"));
  }
  const ecdsa = await run("openssl", ["verify", "-CAfile", `${dir}/ca_ecdsa.crt`, `${dir}/server_ecdsa.crt`]);
  assertEquals(ecdsa.code, 0, ecdsa.err);
  for (const name of [...sm2Leaves, "ca", "ca_ecdsa", "server_ecdsa"]) {
    const r = await run("openssl", ["pkey", "-in", `${dir}/${name}.key`, "-noout"]);
    assertEquals(r.code, 0, `${name}.key: ${r.err}`);
  }
  // Our own verifier agrees, with the TLCP purposes and names.
  const ca = parseCertificate(await Deno.readTextFile(`${dir}/ca.crt`));
  const sign = parseCertificate(await Deno.readTextFile(`${dir}/server_sign.crt`));
  const enc = parseCertificate(await Deno.readTextFile(`${dir}/server_enc.crt`));
  verifyCertificateChain(sign, { roots: [ca], purpose: "sign", hostname: "localhost" });
  verifyCertificateChain(enc, { roots: [ca], purpose: "encrypt", hostname: "127.0.0.1" });
  assertEquals(sign.subject, enc.subject);
  assertEquals(sign.basicConstraints, undefined);
  assertEquals(enc.keyUsage, ["keyEncipherment", "dataEncipherment", "keyAgreement"]);
  assertEquals(ca.basicConstraints, { ca: true, pathLength: undefined });
  ok(ca.subjectKeyId && sign.authorityKeyId);
  assertEquals(sign.authorityKeyId, ca.subjectKeyId);
  const text = (await run("openssl", ["x509", "-in", `${dir}/ca.crt`, "-noout", "-text"])).out;
  ok(/Basic Constraints: critical\s+CA:TRUE/.test(text), text);
  ok(/Key Usage: critical\s+Certificate Sign, CRL Sign/.test(text), text);
  readSm2PrivateKey(await Deno.readTextFile(`${dir}/server_enc.key`));
  const mode = (await Deno.stat(`${dir}/ca.key`)).mode;
  if (mode !== null) assertEquals(mode & 0o077, 0);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("runCertsCommand without --gm writes only the ECDSA pair; --help and bad flags", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry_certs_" });
  assertEquals(await quiet(() => runCertsCommand(["--out", dir, "--host", "a.test", "--ip", "10.1.2.3"])), 0);
  const names = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  assertEquals(names.sort(), ["ca_ecdsa.crt", "ca_ecdsa.key", "server_ecdsa.crt", "server_ecdsa.key"]);
  const leaf = parseCertificate(await Deno.readTextFile(`${dir}/server_ecdsa.crt`));
  assertEquals(leaf.dnsNames, ["a.test"]);
  assertEquals(leaf.ipAddresses, ["10.1.2.3"]);
  assertEquals(await quiet(() => runCertsCommand(["--help"])), 0);
  assertEquals(await quiet(() => runCertsCommand(["--bogus"])), 2);
  await Deno.remove(dir, { recursive: true });
});
