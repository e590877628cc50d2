/**
 * Independent GM TLS peers for interop tests: the Tongsuo binary, how to run it and the arguments it takes. No
 * imports, so that engine-level interop tests can use it as well as the integration tests (GmSSL's counterpart
 * is `lib/tls/engine/tlcp/_gmssl_util.ts`). Tests that need Tongsuo are skipped unless `TONGSUO_BIN` is set.
 *
 * @module
 */

/** Tongsuo's `tongsuo`/`openssl` binary from `TONGSUO_BIN`, or undefined (skip the test). */
export const TONGSUO_BIN: string | undefined = Deno.env.get("TONGSUO_BIN");

/** Tongsuo's names for the TLCP cipher suites. */
export const TONGSUO_TLCP_NAMES = {
  ECC_SM4_CBC_SM3: "ECC-SM2-SM4-CBC-SM3",
  ECC_SM4_GCM_SM3: "ECC-SM2-SM4-GCM-SM3",
  ECDHE_SM4_CBC_SM3: "ECDHE-SM2-SM4-CBC-SM3",
  ECDHE_SM4_GCM_SM3: "ECDHE-SM2-SM4-GCM-SM3",
} as const;

/**
 * Runs Tongsuo with `args` (stdout and stderr piped); `TONGSUO_LIB`, if set, goes in front of LD_LIBRARY_PATH for
 * a Tongsuo that is not installed system-wide.
 */
export function spawnTongsuo(args: string[], stdin: "piped" | "null"): Deno.ChildProcess {
  if (!TONGSUO_BIN) throw new Error("TONGSUO_BIN is not set");
  const lib = Deno.env.get("TONGSUO_LIB");
  const ld = Deno.env.get("LD_LIBRARY_PATH");
  return new Deno.Command(TONGSUO_BIN, {
    args,
    env: lib ? { LD_LIBRARY_PATH: ld ? `${lib}:${ld}` : lib } : {},
    stdin,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/**
 * Tongsuo's NTLS double-certificate arguments for `who`: `-sign_cert`, `-sign_key`, `-enc_cert`, `-enc_key` with
 * the files `<who>_sign.crt`, `<who>_sign.key`, `<who>_enc.crt`, `<who>_enc.key` (as `path` resolves them).
 */
export function tongsuoNtlsCertArgs(path: (file: string) => string, who: "server" | "client"): string[] {
  return [
    "-sign_cert",
    path(`${who}_sign.crt`),
    "-sign_key",
    path(`${who}_sign.key`),
    "-enc_cert",
    path(`${who}_enc.crt`),
    "-enc_key",
    path(`${who}_enc.key`),
  ];
}
