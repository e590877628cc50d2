/**
 * Two hand-assembled WebAssembly modules, one for SM4-GCM and one for SM4-CCM and SM4-CBC, emitted as bytes by
 * the small assembler below when this file is first imported (no toolchain, nothing generated to commit: this
 * file is the source).
 *
 * Everything runs on words loaded little-endian straight from memory, i.e. byte-swapped SM4 words. XOR
 * commutes with the byte swap, so the T-tables, round keys and GHASH rows are stored byte-swapped and no word
 * is ever swapped back; only the numeric counter is swapped when it is placed in a block.
 *
 * GCM memory (two 64 KiB pages per instance, one instance per key). The 64 KiB GHASH table is used here because in
 * WebAssembly it measured about 15% faster for SM4-GCM than 5 KiB Shoup tables (about 160 against 140 MB/s per
 * CPU second), unlike in TypeScript, where the two tie:
 *
 * | offset | size   | contents                                                                 |
 * |--------|--------|--------------------------------------------------------------------------|
 * | 0      | 4096   | T0..T3, byte-swapped, indexed by the byte in memory order                 |
 * | 4096   | 128    | round keys, byte-swapped                                                  |
 * | 4224   | 16     | counter block: 12 nonce bytes, then the low counter word as a plain i32   |
 * | 4240   | 16     | GHASH state Y (memory order)                                              |
 * | 8192   | 65536  | GHASH table: 16 byte positions × 256 values × 16 bytes                    |
 * | 73728  | 57344  | I/O area (data is copied in, processed in place, copied out), scratch    |
 *
 * The CCM/CBC module has one page: the same first 8 KiB (plus a CBC chaining value and decryption round keys)
 * and its I/O area at 8192. It exports `mem`, `ccm`, `cbcmac`, `block`, `cbcEncrypt` and `cbcDecrypt`.
 *
 * GCM exports: `mem`; `gcm(ptr, blocks, sealing)` — CTR from the counter in memory (post-incremented) fused with
 * GHASH over whole blocks in place; `ghash(ptr, blocks)` — folds blocks into Y; `block(ptr)` — encrypts one
 * block in place.
 *
 * Private to `lib/crypto/wasm/`.
 *
 * @module
 */

/** Byte offset of the T-tables. */
export const T_BASE = 0;
/** Byte offset of the round keys. */
export const RK_BASE = 4096;
/** Byte offset of the counter block. */
export const CTR_BASE = 4224;
/** Byte offset of the GHASH state. */
export const Y_BASE = 4240;
/** Byte offset of the GHASH table. */
export const GH_BASE = 8192;
/** Byte offset of the I/O area. */
export const IO_BASE = 73728;
/** Size of the I/O area in bytes (a multiple of 64); the 64 bytes after it are scratch for one keystream block. */
export const IO_SIZE = 57280;
/** Pages of memory per instance. */
export const PAGES = 2;

/** Assembler helper shared with `_sm4_simd_module.ts`. */
export function uleb(n: number): number[] {
  const o: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    o.push(b);
  } while (n !== 0);
  return o;
}

/** Signed LEB128 (the `i32.const` immediates of {@link Asm.k}). */
function sleb(n: number): number[] {
  const o: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      o.push(b);
      return o;
    }
    o.push(b | 0x80);
  }
}

/** Assembler helper shared with `_sm4_simd_module.ts`. */
export function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

/** Assembler helper shared with `_sm4_simd_module.ts`. */
export function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

/** Assembler helper shared with `_sm4_simd_module.ts`. */
export function name(s: string): number[] {
  return vec([...s].map((c) => [c.charCodeAt(0)]));
}

/**
 * A function body under construction: a flat list of opcodes with i32 helpers (shared with
 * `_sm4_simd_module.ts`, which adds the SIMD ones).
 */
export class Asm {
  readonly code: number[] = [];
  get(i: number): this {
    this.code.push(0x20, ...uleb(i));
    return this;
  }
  set(i: number): this {
    this.code.push(0x21, ...uleb(i));
    return this;
  }
  tee(i: number): this {
    this.code.push(0x22, ...uleb(i));
    return this;
  }
  k(v: number): this {
    this.code.push(0x41, ...sleb(v | 0));
    return this;
  }
  load(off: number): this {
    this.code.push(0x28, 2, ...uleb(off));
    return this;
  }
  store(off: number): this {
    this.code.push(0x36, 2, ...uleb(off));
    return this;
  }
  op(...x: number[]): this {
    this.code.push(...x);
    return this;
  }
}

const XOR = 0x73, AND = 0x71, OR = 0x72, SHL = 0x74, SHRU = 0x76, ADD = 0x6a, SUB = 0x6b, ROTL = 0x77, ROTR = 0x78;
const EQZ = 0x45, BR_IF = 0x0d, BR = 0x0c, END = 0x0b, BLOCK = 0x02, LOOP = 0x03, VOID = 0x40;

/** Byte-swaps the i32 on the stack, using `tmp` as scratch. */
function bswap(a: Asm, tmp: number): void {
  a.set(tmp).get(tmp).k(8).op(ROTL).k(0x00ff00ff).op(AND).get(tmp).k(8).op(ROTR).k(0xff00ff00).op(AND).op(OR);
}

/**
 * Emits 32 unrolled SM4 rounds over `n` interleaved blocks whose state words are locals x(b, 0..3); the result
 * of block b is then x(b, 3), x(b, 2), x(b, 1), x(b, 0) (the final reversal is left to the caller).
 */
function rounds(
  a: Asm,
  n: number,
  x: (b: number, j: number) => number,
  t: number,
  k: number,
  rkBase = RK_BASE,
): void {
  for (let r = 0; r < 32; r++) {
    const i = r % 4;
    a.k(0).load(rkBase + 4 * r).set(k);
    for (let b = 0; b < n; b++) {
      const w = (j: number) => x(b, (i + j) % 4);
      a.get(w(1)).get(w(2)).op(XOR).get(w(3)).op(XOR).get(k).op(XOR).set(t);
      a.get(w(0));
      a.get(t).k(2).op(SHL).k(0x3fc).op(AND).load(T_BASE).op(XOR);
      a.get(t).k(6).op(SHRU).k(0x3fc).op(AND).load(T_BASE + 1024).op(XOR);
      a.get(t).k(14).op(SHRU).k(0x3fc).op(AND).load(T_BASE + 2048).op(XOR);
      a.get(t).k(22).op(SHRU).k(0x3fc).op(AND).load(T_BASE + 3072).op(XOR);
      a.set(w(0));
    }
  }
}

/**
 * Emits Y = (Y ^ (v0..v3)) · H with Y in locals y0..y3 (memory order) and the block in locals v(0..3);
 * `p` is scratch.
 */
function ghashStep(a: Asm, y: number, v: (j: number) => number, z: number, p: number): void {
  // x_j = y_j ^ v_j, kept in v.
  for (let j = 0; j < 4; j++) a.get(y + j).get(v(j)).op(XOR).set(v(j));
  for (let j = 0; j < 4; j++) a.k(0).set(z + j);
  for (let pos = 0; pos < 16; pos++) {
    const w = v(pos >> 2), sh = 8 * (pos & 3);
    // Row address offset: byte << 4, within this position's 4 KiB slice.
    a.get(w);
    if (sh === 0) a.k(4).op(SHL);
    else a.k(sh - 4).op(SHRU);
    a.k(0xff0).op(AND).set(p);
    for (let j = 0; j < 4; j++) a.get(z + j).get(p).load(GH_BASE + pos * 4096 + 4 * j).op(XOR).set(z + j);
  }
  for (let j = 0; j < 4; j++) a.get(z + j).set(y + j);
}

/** gcm(ptr, blocks, sealing): params 0..2. */
function gcmFunction(): number[] {
  const a = new Asm();
  const PTR = 0, N = 1, SEAL = 2;
  // Locals: x 16 (3..18), t 19, k 20, c3 21, y 22..25, v 26..29, z 30..33, p 34, tmp 35, in 36..39.
  const X = (b: number, j: number) => 3 + 4 * b + j;
  const T = 19, K = 20, C3 = 21, Y = 22, V = 26, Z = 30, P = 34, TMP = 35, IN = 36;
  a.k(0).load(CTR_BASE + 12).set(C3);
  for (let j = 0; j < 4; j++) a.k(0).load(Y_BASE + 4 * j).set(Y + j);
  const blockBody = (nb: number) => {
    for (let b = 0; b < nb; b++) {
      a.k(0).load(CTR_BASE).set(X(b, 0));
      a.k(0).load(CTR_BASE + 4).set(X(b, 1));
      a.k(0).load(CTR_BASE + 8).set(X(b, 2));
      a.get(C3).k(b).op(ADD);
      bswap(a, TMP);
      a.set(X(b, 3));
    }
    rounds(a, nb, X, T, K);
    for (let b = 0; b < nb; b++) {
      for (let j = 0; j < 4; j++) {
        // in = mem[ptr + 16b + 4j]; out = in ^ ks; GHASH takes the ciphertext: out when sealing, in when opening.
        a.get(PTR).load(16 * b + 4 * j).set(IN + j);
        a.get(PTR).get(IN + j).get(X(b, 3 - j)).op(XOR).tee(V + j).store(16 * b + 4 * j);
        // v = sealing ? out : in  ==  in ^ ((out ^ in) & -sealing)
        a.get(IN + j).get(V + j).get(IN + j).op(XOR).k(0).get(SEAL).op(SUB).op(AND).op(XOR).set(V + j);
      }
      ghashStep(a, Y, (j) => V + j, Z, P);
    }
    a.get(PTR).k(16 * nb).op(ADD).set(PTR);
    a.get(C3).k(nb).op(ADD).set(C3);
    a.get(N).k(nb).op(SUB).set(N);
  };
  // while (n >= 4) four-way; while (n > 0) one-way.
  a.op(BLOCK, VOID, LOOP, VOID);
  a.get(N).k(4).op(0x49).op(BR_IF, 1); // n < 4 (unsigned) -> exit
  blockBody(4);
  a.op(BR, 0, END, END);
  a.op(BLOCK, VOID, LOOP, VOID);
  a.get(N).op(EQZ).op(BR_IF, 1);
  blockBody(1);
  a.op(BR, 0, END, END);
  a.k(0).get(C3).store(CTR_BASE + 12);
  for (let j = 0; j < 4; j++) a.k(0).get(Y + j).store(Y_BASE + 4 * j);
  a.op(END);
  const body = [...vec([[...uleb(37), 0x7f]]), ...a.code];
  return [...uleb(body.length), ...body];
}

/** ghash(ptr, blocks): params 0..1. */
function ghashFunction(): number[] {
  const a = new Asm();
  const PTR = 0, N = 1;
  // Locals: y 2..5, v 6..9, z 10..13, p 14.
  const Y = 2, V = 6, Z = 10, P = 14;
  for (let j = 0; j < 4; j++) a.k(0).load(Y_BASE + 4 * j).set(Y + j);
  a.op(BLOCK, VOID, LOOP, VOID);
  a.get(N).op(EQZ).op(BR_IF, 1);
  for (let j = 0; j < 4; j++) a.get(PTR).load(4 * j).set(V + j);
  ghashStep(a, Y, (j) => V + j, Z, P);
  a.get(PTR).k(16).op(ADD).set(PTR);
  a.get(N).k(1).op(SUB).set(N);
  a.op(BR, 0, END, END);
  for (let j = 0; j < 4; j++) a.k(0).get(Y + j).store(Y_BASE + 4 * j);
  a.op(END);
  const body = [...vec([[...uleb(13), 0x7f]]), ...a.code];
  return [...uleb(body.length), ...body];
}

/** block(ptr): param 0. */
function blockFunction(): number[] {
  const a = new Asm();
  const PTR = 0;
  const X = (_b: number, j: number) => 1 + j;
  const T = 5, K = 6;
  for (let j = 0; j < 4; j++) a.get(PTR).load(4 * j).set(X(0, j));
  rounds(a, 1, X, T, K);
  for (let j = 0; j < 4; j++) a.get(PTR).get(X(0, 3 - j)).store(4 * j);
  a.op(END);
  const body = [...vec([[...uleb(6), 0x7f]]), ...a.code];
  return [...uleb(body.length), ...body];
}

const I32 = 0x7f;

/** The module bytes. */
export const SM4_GCM_WASM: Uint8Array<ArrayBuffer> = new Uint8Array([
  0x00,
  0x61,
  0x73,
  0x6d,
  1,
  0,
  0,
  0,
  // Types: 0 = (i32, i32, i32) -> (), 1 = (i32, i32) -> (), 2 = (i32) -> ().
  ...section(
    1,
    vec([[0x60, ...vec([[I32], [I32], [I32]]), 0], [0x60, ...vec([[I32], [I32]]), 0], [0x60, ...vec([[I32]]), 0]]),
  ),
  ...section(3, vec([[0], [1], [2]])),
  ...section(5, vec([[0x01, PAGES, PAGES]])),
  ...section(
    7,
    vec([[...name("mem"), 2, 0], [...name("gcm"), 0, 0], [...name("ghash"), 0, 1], [...name("block"), 0, 2]]),
  ),
  ...section(10, vec([gcmFunction(), ghashFunction(), blockFunction()])),
]);

let compiled: WebAssembly.Module | undefined;

/** The compiled module, compiled on first use (synchronously: it is a few tens of KiB). */
export function sm4GcmModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(SM4_GCM_WASM);
  return compiled;
}

/** CCM module: byte offset of the CBC-MAC state (memory order). */
export const CCM_MAC_BASE = 4240;
/** CCM module: byte offset of the next unused keystream block. */
export const CCM_KS_BASE = 4256;
/** CCM module: byte offset of the I/O area (same size, {@link IO_SIZE}, plus 64 bytes of scratch). */
export const CCM_IO_BASE = 8192;

/**
 * ccm(ptr, blocks, sealing): params 0..2. Pipelined so every SM4 call but the first is two-way: with ks the
 * keystream for block i, out_i = in_i ^ ks, then one call computes MAC = E(MAC ^ p_i) (p_i the plaintext:
 * `in` when sealing, `out` when opening) together with ks = E(counter i + 1). On return the keystream for the
 * next counter is left at {@link CCM_KS_BASE} (the tail of a message uses it) and the counter word is advanced.
 */
function ccmFunction(): number[] {
  const a = new Asm();
  const PTR = 0, N = 1, SEAL = 2;
  // Locals: MAC block 3..6, counter block 7..10, t 11, k 12, c3 13, tmp 14, in 15..18, o 19..22.
  const X = (b: number, j: number) => (b === 0 ? 3 : 7) + j;
  const T = 11, K = 12, C3 = 13, TMP = 14, IN = 15, O = 19;
  const loadCounter = (b: number) => {
    a.k(0).load(CTR_BASE).set(X(b, 0));
    a.k(0).load(CTR_BASE + 4).set(X(b, 1));
    a.k(0).load(CTR_BASE + 8).set(X(b, 2));
    a.get(C3);
    bswap(a, TMP);
    a.set(X(b, 3));
    a.get(C3).k(1).op(ADD).set(C3);
  };
  a.k(0).load(CTR_BASE + 12).set(C3);
  // ks for the first block, one-way; kept in the y locals in output order y3, y2, y1, y0.
  loadCounter(1);
  rounds(a, 1, (_b, j) => X(1, j), T, K);
  a.op(BLOCK, VOID, LOOP, VOID);
  a.get(N).op(EQZ).op(BR_IF, 1);
  for (let j = 0; j < 4; j++) {
    a.get(PTR).load(4 * j).set(IN + j);
    a.get(PTR).get(IN + j).get(X(1, 3 - j)).op(XOR).tee(O + j).store(4 * j);
  }
  // MAC input word j: mac_j ^ p_j with p_j = sealing ? in_j : o_j  ==  o_j ^ ((in_j ^ o_j) & -sealing).
  // The MAC stays in memory (memory order) between blocks.
  for (let j = 0; j < 4; j++) {
    a.k(0).load(CCM_MAC_BASE + 4 * j);
    a.get(O + j).get(IN + j).get(O + j).op(XOR).k(0).get(SEAL).op(SUB).op(AND).op(XOR);
    a.op(XOR).set(X(0, j));
  }
  loadCounter(1);
  rounds(a, 2, X, T, K);
  for (let j = 0; j < 4; j++) a.k(0).get(X(0, 3 - j)).store(CCM_MAC_BASE + 4 * j);
  a.get(PTR).k(16).op(ADD).set(PTR);
  a.get(N).k(1).op(SUB).set(N);
  a.op(BR, 0, END, END);
  for (let j = 0; j < 4; j++) a.k(0).get(X(1, 3 - j)).store(CCM_KS_BASE + 4 * j);
  // The keystream left behind is for counter c3 - 1: the next call (or the caller's tail) starts there.
  a.k(0).get(C3).k(1).op(SUB).store(CTR_BASE + 12);
  a.op(END);
  const body = [...vec([[...uleb(20), 0x7f]]), ...a.code];
  return [...uleb(body.length), ...body];
}

/** cbcmac(ptr, blocks): params 0..1; MAC = E(MAC ^ block) for each block. */
function cbcmacFunction(): number[] {
  const a = new Asm();
  const PTR = 0, N = 1;
  const X = (_b: number, j: number) => 2 + j;
  const T = 6, K = 7;
  for (let j = 0; j < 4; j++) a.k(0).load(CCM_MAC_BASE + 4 * j).set(X(0, j));
  a.op(BLOCK, VOID, LOOP, VOID);
  a.get(N).op(EQZ).op(BR_IF, 1);
  // The MAC is in memory order in x0..x3 at the top of each iteration.
  for (let j = 0; j < 4; j++) a.get(X(0, j)).get(PTR).load(4 * j).op(XOR).set(X(0, j));
  rounds(a, 1, X, T, K);
  // Reorder x3, x2, x1, x0 into x0..x3 through the stack.
  a.get(X(0, 3)).get(X(0, 2)).get(X(0, 1)).get(X(0, 0));
  a.set(X(0, 3)).set(X(0, 2)).set(X(0, 1)).set(X(0, 0));
  a.get(PTR).k(16).op(ADD).set(PTR);
  a.get(N).k(1).op(SUB).set(N);
  a.op(BR, 0, END, END);
  for (let j = 0; j < 4; j++) a.k(0).get(X(0, j)).store(CCM_MAC_BASE + 4 * j);
  a.op(END);
  const body = [...vec([[...uleb(6), 0x7f]]), ...a.code];
  return [...uleb(body.length), ...body];
}

/** CCM module: byte offset of the CBC chaining value (memory order). */
export const CBC_IV_BASE = 4272;
/** CCM module: byte offset of the decryption round keys (the encryption keys reversed), byte-swapped. */
export const RK_DEC_BASE = 4352;

/** cbcEncrypt(ptr, blocks): params 0..1; in place, chaining value at {@link CBC_IV_BASE}. */
function cbcEncryptFunction(): number[] {
  const a = new Asm();
  const PTR = 0, N = 1;
  const X = (_b: number, j: number) => 2 + j;
  const T = 6, K = 7;
  for (let j = 0; j < 4; j++) a.k(0).load(CBC_IV_BASE + 4 * j).set(X(0, j));
  a.op(BLOCK, VOID, LOOP, VOID);
  a.get(N).op(EQZ).op(BR_IF, 1);
  for (let j = 0; j < 4; j++) a.get(X(0, j)).get(PTR).load(4 * j).op(XOR).set(X(0, j));
  rounds(a, 1, X, T, K);
  a.get(X(0, 3)).get(X(0, 2)).get(X(0, 1)).get(X(0, 0));
  a.set(X(0, 3)).set(X(0, 2)).set(X(0, 1)).set(X(0, 0));
  for (let j = 0; j < 4; j++) a.get(PTR).get(X(0, j)).store(4 * j);
  a.get(PTR).k(16).op(ADD).set(PTR);
  a.get(N).k(1).op(SUB).set(N);
  a.op(BR, 0, END, END);
  for (let j = 0; j < 4; j++) a.k(0).get(X(0, j)).store(CBC_IV_BASE + 4 * j);
  a.op(END);
  const body = [...vec([[...uleb(6), 0x7f]]), ...a.code];
  return [...uleb(body.length), ...body];
}

/**
 * cbcDecrypt(ptr, blocks): params 0..1; in place, four blocks per group with interleaved rounds, then single
 * blocks. Each group is written back last block first, so every block's predecessor ciphertext is still in
 * memory when it is needed.
 */
function cbcDecryptFunction(): number[] {
  const a = new Asm();
  const PTR = 0, N = 1;
  // Locals: x 2..17, t 18, k 19, iv 20..23, next iv 24..27.
  const X = (b: number, j: number) => 2 + 4 * b + j;
  const T = 18, K = 19, IV = 20, NIV = 24;
  for (let j = 0; j < 4; j++) a.k(0).load(CBC_IV_BASE + 4 * j).set(IV + j);
  const group = (nb: number) => {
    for (let b = 0; b < nb; b++) for (let j = 0; j < 4; j++) a.get(PTR).load(16 * b + 4 * j).set(X(b, j));
    rounds(a, nb, X, T, K, RK_DEC_BASE);
    for (let j = 0; j < 4; j++) a.get(PTR).load(16 * (nb - 1) + 4 * j).set(NIV + j);
    for (let b = nb - 1; b >= 0; b--) {
      for (let j = 0; j < 4; j++) {
        a.get(PTR).get(X(b, 3 - j));
        if (b === 0) a.get(IV + j);
        else a.get(PTR).load(16 * (b - 1) + 4 * j);
        a.op(XOR).store(16 * b + 4 * j);
      }
    }
    for (let j = 0; j < 4; j++) a.get(NIV + j).set(IV + j);
    a.get(PTR).k(16 * nb).op(ADD).set(PTR);
    a.get(N).k(nb).op(SUB).set(N);
  };
  a.op(BLOCK, VOID, LOOP, VOID);
  a.get(N).k(4).op(0x49).op(BR_IF, 1);
  group(4);
  a.op(BR, 0, END, END);
  a.op(BLOCK, VOID, LOOP, VOID);
  a.get(N).op(EQZ).op(BR_IF, 1);
  group(1);
  a.op(BR, 0, END, END);
  for (let j = 0; j < 4; j++) a.k(0).get(IV + j).store(CBC_IV_BASE + 4 * j);
  a.op(END);
  const body = [...vec([[...uleb(26), 0x7f]]), ...a.code];
  return [...uleb(body.length), ...body];
}

/** The CCM and CBC module bytes: one page; exports `mem`, `ccm`, `cbcmac`, `block`, `cbcEncrypt`, `cbcDecrypt`. */
export const SM4_CCM_WASM: Uint8Array<ArrayBuffer> = new Uint8Array([
  0x00,
  0x61,
  0x73,
  0x6d,
  1,
  0,
  0,
  0,
  ...section(
    1,
    vec([[0x60, ...vec([[I32], [I32], [I32]]), 0], [0x60, ...vec([[I32], [I32]]), 0], [0x60, ...vec([[I32]]), 0]]),
  ),
  ...section(3, vec([[0], [1], [2], [1], [1]])),
  ...section(5, vec([[0x01, 1, 1]])),
  ...section(
    7,
    vec([[...name("mem"), 2, 0], [...name("ccm"), 0, 0], [...name("cbcmac"), 0, 1], [...name("block"), 0, 2], [
      ...name("cbcEncrypt"),
      0,
      3,
    ], [...name("cbcDecrypt"), 0, 4]]),
  ),
  ...section(10, vec([ccmFunction(), cbcmacFunction(), blockFunction(), cbcEncryptFunction(), cbcDecryptFunction()])),
]);

let compiledCcm: WebAssembly.Module | undefined;

/** The compiled CCM module, compiled on first use. */
export function sm4CcmModule(): WebAssembly.Module {
  compiledCcm ??= new WebAssembly.Module(SM4_CCM_WASM);
  return compiledCcm;
}

/** True on little-endian hosts, where an Int32Array over wasm memory sees words as wasm does. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function bswap32(x: number): number {
  return (x << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24);
}

let swappedT: Int32Array | undefined;

/**
 * Writes `words` into `mem` at byte offset `at` as big-endian words — the byte order the kernels expect for
 * T-tables, round keys and GHASH rows.
 * Goes through an Int32Array view on little-endian hosts (all Deno targets), through a DataView otherwise.
 */
export function storeBigEndian(mem: ArrayBufferLike, at: number, words: Int32Array): void {
  if (!LITTLE_ENDIAN) {
    const dv = new DataView(mem);
    for (let i = 0; i < words.length; i++) dv.setInt32(at + 4 * i, words[i]!, false);
    return;
  }
  const view = new Int32Array(mem, at, words.length);
  for (let i = 0; i < words.length; i++) view[i] = bswap32(words[i]!);
}

/** Writes the four T-tables, big-endian, at {@link T_BASE}, from a copy swapped once per process. */
export function storeTTables(mem: ArrayBufferLike, t: readonly Int32Array[]): void {
  if (!LITTLE_ENDIAN) {
    t.forEach((tab, i) => storeBigEndian(mem, T_BASE + 1024 * i, tab));
    return;
  }
  if (swappedT === undefined) {
    swappedT = new Int32Array(1024);
    t.forEach((tab, i) => tab.forEach((w, j) => swappedT![256 * i + j] = bswap32(w)));
  }
  new Int32Array(mem, T_BASE, 1024).set(swappedT);
}
