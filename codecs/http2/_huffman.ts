/**
 * The HPACK Huffman code (RFC 7541 Appendix B): encoding straight from the code table, decoding through a
 * byte-at-a-time state table whose rows are built on first use.
 *
 * The decoder is a walk of the code tree, eight input bits per step: a state is an internal node of the tree
 * (256 of them for 257 symbols), and `DECODE[state << 8 | byte]` holds the node reached after those eight bits,
 * the symbols completed on the way (at most two, since every code is at least five bits long), whether that node
 * may end a string (the root, or a node at most seven bits down the all-ones path, i.e. valid EOS-prefix padding),
 * and whether the walk hit EOS (a decoding error, RFC 7541 §5.2). It turns the per-bit walk into one table load
 * per byte; its rows are built on first use.
 *
 * @module
 */

/** The code of every symbol (0..255 octets, 256 = EOS), right-aligned. */
const CODES = new Uint32Array([
  0x1ff8,
  0x7fffd8,
  0xfffffe2,
  0xfffffe3,
  0xfffffe4,
  0xfffffe5,
  0xfffffe6,
  0xfffffe7,
  0xfffffe8,
  0xffffea,
  0x3ffffffc,
  0xfffffe9,
  0xfffffea,
  0x3ffffffd,
  0xfffffeb,
  0xfffffec,
  0xfffffed,
  0xfffffee,
  0xfffffef,
  0xffffff0,
  0xffffff1,
  0xffffff2,
  0x3ffffffe,
  0xffffff3,
  0xffffff4,
  0xffffff5,
  0xffffff6,
  0xffffff7,
  0xffffff8,
  0xffffff9,
  0xffffffa,
  0xffffffb,
  0x14,
  0x3f8,
  0x3f9,
  0xffa,
  0x1ff9,
  0x15,
  0xf8,
  0x7fa,
  0x3fa,
  0x3fb,
  0xf9,
  0x7fb,
  0xfa,
  0x16,
  0x17,
  0x18,
  0x0,
  0x1,
  0x2,
  0x19,
  0x1a,
  0x1b,
  0x1c,
  0x1d,
  0x1e,
  0x1f,
  0x5c,
  0xfb,
  0x7ffc,
  0x20,
  0xffb,
  0x3fc,
  0x1ffa,
  0x21,
  0x5d,
  0x5e,
  0x5f,
  0x60,
  0x61,
  0x62,
  0x63,
  0x64,
  0x65,
  0x66,
  0x67,
  0x68,
  0x69,
  0x6a,
  0x6b,
  0x6c,
  0x6d,
  0x6e,
  0x6f,
  0x70,
  0x71,
  0x72,
  0xfc,
  0x73,
  0xfd,
  0x1ffb,
  0x7fff0,
  0x1ffc,
  0x3ffc,
  0x22,
  0x7ffd,
  0x3,
  0x23,
  0x4,
  0x24,
  0x5,
  0x25,
  0x26,
  0x27,
  0x6,
  0x74,
  0x75,
  0x28,
  0x29,
  0x2a,
  0x7,
  0x2b,
  0x76,
  0x2c,
  0x8,
  0x9,
  0x2d,
  0x77,
  0x78,
  0x79,
  0x7a,
  0x7b,
  0x7ffe,
  0x7fc,
  0x3ffd,
  0x1ffd,
  0xffffffc,
  0xfffe6,
  0x3fffd2,
  0xfffe7,
  0xfffe8,
  0x3fffd3,
  0x3fffd4,
  0x3fffd5,
  0x7fffd9,
  0x3fffd6,
  0x7fffda,
  0x7fffdb,
  0x7fffdc,
  0x7fffdd,
  0x7fffde,
  0xffffeb,
  0x7fffdf,
  0xffffec,
  0xffffed,
  0x3fffd7,
  0x7fffe0,
  0xffffee,
  0x7fffe1,
  0x7fffe2,
  0x7fffe3,
  0x7fffe4,
  0x1fffdc,
  0x3fffd8,
  0x7fffe5,
  0x3fffd9,
  0x7fffe6,
  0x7fffe7,
  0xffffef,
  0x3fffda,
  0x1fffdd,
  0xfffe9,
  0x3fffdb,
  0x3fffdc,
  0x7fffe8,
  0x7fffe9,
  0x1fffde,
  0x7fffea,
  0x3fffdd,
  0x3fffde,
  0xfffff0,
  0x1fffdf,
  0x3fffdf,
  0x7fffeb,
  0x7fffec,
  0x1fffe0,
  0x1fffe1,
  0x3fffe0,
  0x1fffe2,
  0x7fffed,
  0x3fffe1,
  0x7fffee,
  0x7fffef,
  0xfffea,
  0x3fffe2,
  0x3fffe3,
  0x3fffe4,
  0x7ffff0,
  0x3fffe5,
  0x3fffe6,
  0x7ffff1,
  0x3ffffe0,
  0x3ffffe1,
  0xfffeb,
  0x7fff1,
  0x3fffe7,
  0x7ffff2,
  0x3fffe8,
  0x1ffffec,
  0x3ffffe2,
  0x3ffffe3,
  0x3ffffe4,
  0x7ffffde,
  0x7ffffdf,
  0x3ffffe5,
  0xfffff1,
  0x1ffffed,
  0x7fff2,
  0x1fffe3,
  0x3ffffe6,
  0x7ffffe0,
  0x7ffffe1,
  0x3ffffe7,
  0x7ffffe2,
  0xfffff2,
  0x1fffe4,
  0x1fffe5,
  0x3ffffe8,
  0x3ffffe9,
  0xffffffd,
  0x7ffffe3,
  0x7ffffe4,
  0x7ffffe5,
  0xfffec,
  0xfffff3,
  0xfffed,
  0x1fffe6,
  0x3fffe9,
  0x1fffe7,
  0x1fffe8,
  0x7ffff3,
  0x3fffea,
  0x3fffeb,
  0x1ffffee,
  0x1ffffef,
  0xfffff4,
  0xfffff5,
  0x3ffffea,
  0x7ffff4,
  0x3ffffeb,
  0x7ffffe6,
  0x3ffffec,
  0x3ffffed,
  0x7ffffe7,
  0x7ffffe8,
  0x7ffffe9,
  0x7ffffea,
  0x7ffffeb,
  0xffffffe,
  0x7ffffec,
  0x7ffffed,
  0x7ffffee,
  0x7ffffef,
  0x7fffff0,
  0x3ffffee,
  0x3fffffff,
]);

/** The bit length of every symbol's code. */
const LENGTHS = new Uint8Array([
  13,
  23,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  24,
  30,
  28,
  28,
  30,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  30,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  6,
  10,
  10,
  12,
  13,
  6,
  8,
  11,
  10,
  10,
  8,
  11,
  8,
  6,
  6,
  6,
  5,
  5,
  5,
  6,
  6,
  6,
  6,
  6,
  6,
  6,
  7,
  8,
  15,
  6,
  12,
  10,
  13,
  6,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  8,
  7,
  8,
  13,
  19,
  13,
  14,
  6,
  15,
  5,
  6,
  5,
  6,
  5,
  6,
  6,
  6,
  5,
  7,
  7,
  6,
  6,
  6,
  5,
  6,
  7,
  6,
  5,
  5,
  6,
  7,
  7,
  7,
  7,
  7,
  15,
  11,
  14,
  13,
  28,
  20,
  22,
  20,
  20,
  22,
  22,
  22,
  23,
  22,
  23,
  23,
  23,
  23,
  23,
  24,
  23,
  24,
  24,
  22,
  23,
  24,
  23,
  23,
  23,
  23,
  21,
  22,
  23,
  22,
  23,
  23,
  24,
  22,
  21,
  20,
  22,
  22,
  23,
  23,
  21,
  23,
  22,
  22,
  24,
  21,
  22,
  23,
  23,
  21,
  21,
  22,
  21,
  23,
  22,
  23,
  23,
  20,
  22,
  22,
  22,
  23,
  22,
  22,
  23,
  26,
  26,
  20,
  19,
  22,
  23,
  22,
  25,
  26,
  26,
  26,
  27,
  27,
  26,
  24,
  25,
  19,
  21,
  26,
  27,
  27,
  26,
  27,
  24,
  21,
  21,
  26,
  26,
  28,
  27,
  27,
  27,
  20,
  24,
  20,
  21,
  22,
  21,
  21,
  23,
  22,
  22,
  25,
  25,
  24,
  24,
  26,
  23,
  26,
  27,
  26,
  26,
  27,
  27,
  27,
  27,
  27,
  28,
  27,
  27,
  27,
  27,
  27,
  26,
  30,
]);

const F_ACCEPT = 1 << 26;
const F_FAIL = 1 << 27;

/** The code tree: node 0 is the root; CHILD[node * 2 + bit] >= 0 is an internal node, < 0 is leaf -(symbol + 1). */
const CHILD = new Int32Array(256 * 2);
/** Internal nodes that may end a string: the root, and nodes 1..7 bits down the all-ones (EOS) path. */
const ACCEPT = new Uint8Array(256);
{
  let nodes = 1;
  for (let sym = 0; sym <= 256; sym++) {
    const code = CODES[sym]!;
    const len = LENGTHS[sym]!;
    let node = 0;
    for (let i = len - 1; i > 0; i--) {
      const slot = node * 2 + ((code >>> i) & 1);
      if (CHILD[slot] === 0) CHILD[slot] = nodes++;
      node = CHILD[slot]!;
    }
    CHILD[node * 2 + (code & 1)] = -(sym + 1);
  }
  ACCEPT[0] = 1;
  for (let node = 0, depth = 1; depth <= 7; depth++) {
    node = CHILD[node * 2 + 1]!;
    ACCEPT[node] = 1;
  }
}

/**
 * The byte-at-a-time table, `DECODE[state << 8 | byte]`. Entry layout: bits 0-7 next state, 8-15 first symbol,
 * 16-23 second symbol, 24-25 symbol count, bit 26 the next state may end a string, bit 27 EOS was decoded.
 *
 * Rows are filled on first use: a real entry is never 0 (one that returns to the root has the accept bit), so 0
 * means "not built yet" and costs the decoder no extra test. Building all 256 rows up front made loading this
 * module take 10-20 ms (the loop runs once, in the interpreter); a row takes about 50 µs, and most strings only
 * ever visit a few dozen states.
 */
const DECODE = new Uint32Array(256 * 256);

function buildRow(state: number): void {
  for (let byte = 0; byte < 256; byte++) {
    let node = state;
    let count = 0;
    let syms = 0;
    let fail = 0;
    for (let bit = 7; bit >= 0; bit--) {
      const next = CHILD[node * 2 + ((byte >>> bit) & 1)]!;
      if (next >= 0) {
        node = next;
        continue;
      }
      const sym = -next - 1;
      node = 0;
      if (sym === 256) {
        fail = F_FAIL;
        break;
      }
      syms |= sym << (8 + count * 8);
      count++;
    }
    DECODE[(state << 8) | byte] = node | syms | (count << 24) | (ACCEPT[node] ? F_ACCEPT : 0) | fail;
  }
}

/**
 * Decodes the Huffman-coded octets `src[start, end)` into `out` from offset 0 and returns the decoded length, or
 * -1 when the input is invalid: it holds EOS, or ends in padding longer than seven bits or not all ones (RFC 7541
 * §5.2). `out` must hold at least `huffmanMaxDecodedLength(end - start)` octets.
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number, out: Uint8Array): number {
  let state = 0;
  let n = 0;
  let e = F_ACCEPT;
  for (let i = start; i < end; i++) {
    const at = (state << 8) | src[i]!;
    e = DECODE[at]!;
    if (e === 0) {
      buildRow(state);
      e = DECODE[at]!;
    }
    if (e & F_FAIL) return -1;
    const count = (e >>> 24) & 3;
    if (count !== 0) {
      out[n++] = e >>> 8;
      if (count === 2) out[n++] = e >>> 16;
    }
    state = e & 0xff;
  }
  return e & F_ACCEPT ? n : -1;
}

/** Whether `src[start, end)` is a valid Huffman string (what `huffmanDecode` would accept), without decoding it. */
export function huffmanValid(src: Uint8Array, start: number, end: number): boolean {
  let e = F_ACCEPT;
  for (let i = start; i < end; i++) {
    const at = ((e & 0xff) << 8) | src[i]!;
    const prev = e;
    e = DECODE[at]!;
    if (e === 0) {
      buildRow(prev & 0xff);
      e = DECODE[at]!;
    }
    if (e & F_FAIL) return false;
  }
  return (e & F_ACCEPT) !== 0;
}

/** The most octets `len` Huffman-coded octets can decode to (every code is at least five bits). */
export function huffmanMaxDecodedLength(len: number): number {
  return ((len * 8) / 5) | 0;
}

/**
 * The Huffman-coded length of `s` in octets. Every char code is taken as one octet (latin1); codes above 0xFF
 * use their low byte, as `huffmanEncode` does.
 */
export function huffmanEncodedLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += LENGTHS[s.charCodeAt(i) & 0xff]!;
  return (bits + 7) >>> 3;
}

/**
 * Writes the Huffman coding of `s` (latin1, one octet per char code) into `out` at `pos`, padded with ones
 * (EOS prefix) to an octet boundary, and returns the offset after it. `out` must have room for
 * `huffmanEncodedLength(s)` octets.
 */
export function huffmanEncode(s: string, out: Uint8Array, pos: number): number {
  // acc holds fewer than 8 pending bits between symbols; codes longer than 24 bits are split so acc stays < 2^32.
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < s.length; i++) {
    const sym = s.charCodeAt(i) & 0xff;
    let code = CODES[sym]!;
    let len = LENGTHS[sym]!;
    if (len > 24) {
      const hi = len - 16;
      acc = (acc << hi) | (code >>> 16);
      bits += hi;
      while (bits >= 8) {
        bits -= 8;
        out[pos++] = acc >>> bits;
      }
      acc &= (1 << bits) - 1;
      code &= 0xffff;
      len = 16;
    }
    acc = ((acc << len) | code) >>> 0;
    bits += len;
    while (bits >= 8) {
      bits -= 8;
      out[pos++] = acc >>> bits;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out[pos++] = (acc << (8 - bits)) | (0xff >>> bits);
  return pos;
}
