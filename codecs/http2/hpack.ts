/**
 * HPACK (RFC 7541) header compression for the HTTP/2 codec: `HpackDecoder` turns one header block into a flat
 * `[name, value, ...]` list, `HpackEncoder` turns such a list into one header block.
 *
 * Strings are octets: the decoder maps every octet to one UTF-16 unit (latin1, as the HTTP/1 reader does), and the
 * encoder writes every char code as one octet, so field values survive byte for byte. Both sides keep their dynamic
 * table as a ring of parallel name/value arrays; the encoder also keeps maps from name and from name+value to the
 * insertion number of the newest entry holding them, so lookups cost two `Map.get`s and no string building.
 *
 * The decoder is safe against HPACK bombs: once the list passes `maxListSize` or `maxCount` it stops collecting
 * fields (and stops building strings that only the list would hold) but keeps applying dynamic table updates, so it
 * stays in sync with the peer's encoder, then throws `HeaderListTooLargeError` at the end of the block. Its work is
 * linear in the block size: every octet is read once, and only strings that go into the table or the list are built.
 *
 * @example
 * ```ts
 * import { HpackDecoder, HpackEncoder } from "./hpack.ts";
 *
 * const block = new HpackEncoder().encode([":method", "GET", ":path", "/", "x-id", "7"]);
 * const list = new HpackDecoder().decode(block, 65536, 100); // [":method", "GET", ":path", "/", "x-id", "7"]
 * ```
 *
 * @module
 */
import {
  huffmanDecode,
  huffmanEncode,
  huffmanEncodedLength,
  huffmanMaxDecodedLength,
  huffmanValid,
} from "./_huffman.ts";

/**
 * A COMPRESSION_ERROR: the header block cannot be decoded; the HTTP/2 connection must end with
 * GOAWAY(COMPRESSION_ERROR). `offset` is where in the block decoding failed (-1 when not known).
 */
export class HpackError extends Error {
  /** Offset in the header block of the representation or string that failed, or -1. */
  readonly offset: number;

  /** Creates the error; `message` names what was wrong, `offset` where. */
  constructor(message: string, offset = -1) {
    super(message);
    this.name = "HpackError";
    this.offset = offset;
  }
}

/**
 * Thrown by decode when the decoded header list exceeds maxListSize or maxCount. The block WAS fully processed
 * (dynamic table kept in sync), so only the stream needs to fail (the connection survives).
 */
export class HeaderListTooLargeError extends Error {
  /** Creates the error with a message naming the limit that was passed. */
  constructor(message: string) {
    super(message);
    this.name = "HeaderListTooLargeError";
  }
}

/** The default SETTINGS_HEADER_TABLE_SIZE (RFC 9113 §6.5.2). */
const DEFAULT_TABLE_SIZE = 4096;
/** The largest dynamic table the encoder uses, whatever the peer allows. */
const ENCODER_TABLE_CAP = 4096;
/**
 * The encoder output slab size. A fresh `Uint8Array` per block costs far more than the encoding (ArrayBuffer
 * allocation and its GC: 1.3 µs against 45 ns for a view of a slab, measured in a Deno.bench loop), so blocks are
 * views of a shared 16 KiB slab; blocks over a quarter of it get a buffer of their own.
 */
const SLAB_SIZE = 16384;
/** RFC 7541 §4.1: every entry costs 32 octets on top of its name and value. */
const ENTRY_OVERHEAD = 32;

/** RFC 7541 Appendix A, index 1..61 (slot 0 unused). */
const STATIC: readonly (readonly [string, string])[] = [
  ["", ""],
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];
const STATIC_COUNT = 61;
const STATIC_NAMES: readonly string[] = STATIC.map((e) => e[0]);
const STATIC_VALUES: readonly string[] = STATIC.map((e) => e[1]);

/** A static table name: its lowest index, and the index of every value the table pairs it with. */
interface StaticName {
  readonly index: number;
  readonly values: Map<string, number>;
}

const STATIC_BY_NAME: ReadonlyMap<string, StaticName> = (() => {
  const m = new Map<string, StaticName>();
  for (let i = 1; i <= STATIC_COUNT; i++) {
    const [name, value] = STATIC[i]!;
    let e = m.get(name);
    if (e === undefined) m.set(name, e = { index: i, values: new Map() });
    if (!e.values.has(value)) e.values.set(value, i);
  }
  return m;
})();

const utf8 = new TextDecoder();

/**
 * Decodes `buf[start, end)` as latin1 (every octet one UTF-16 unit). `String.fromCharCode.apply` costs about
 * 90 ns + 2.2 ns per octet, `TextDecoder` about 120 ns flat (and equals latin1 on ASCII): so strings of 16 octets
 * or more that are all ASCII go to `TextDecoder` (measured: 370 → 120 ns for 128 octets), the rest to `apply` in
 * chunks it can take.
 */
function latin1(buf: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n >= 16) {
    let or = 0;
    for (let i = start; i < end; i++) or |= buf[i]!;
    if (or < 0x80) return utf8.decode(buf.subarray(start, end));
  }
  if (n <= 4096) return String.fromCharCode.apply(null, buf.subarray(start, end) as unknown as number[]);
  let s = "";
  for (let i = start; i < end; i += 4096) {
    const e = end - i > 4096 ? i + 4096 : end;
    s += String.fromCharCode.apply(null, buf.subarray(i, e) as unknown as number[]);
  }
  return s;
}

/** Huffman output shared by every decoder (decoding is synchronous); strings over SCRATCH_MAX get their own. */
let scratch = new Uint8Array(1024);
const SCRATCH_MAX = 65536;

/** Encoder output slab shared by every encoder: blocks are handed out as disjoint views of it (see `encode`). */
let slab = new Uint8Array(SLAB_SIZE);
let slabPos = 0;

/** Offset after the integer or string the last `readInt`/`readString`/`skipString` call read. */
let next = 0;

/**
 * Reads an HPACK integer (RFC 7541 §5.1) whose prefix is the low bits of `buf[pos]` selected by `mask`. At most
 * five continuation octets and values up to 2^31 - 1 are accepted: nothing legitimate needs more, and it keeps
 * the arithmetic exact.
 */
function readInt(buf: Uint8Array, pos: number, mask: number): number {
  let v = buf[pos]! & mask;
  pos++;
  if (v < mask) {
    next = pos;
    return v;
  }
  const end = buf.length;
  let scale = 1;
  for (let n = 0;; n++) {
    if (pos >= end) throw new HpackError("hpack: integer runs past the end of the block", pos);
    if (n === 5) throw new HpackError("hpack: integer has more than five continuation octets", pos);
    const b = buf[pos++]!;
    v += (b & 0x7f) * scale;
    if (b < 0x80) break;
    scale *= 128;
  }
  if (v > 0x7fffffff) throw new HpackError(`hpack: integer ${v} is too large`, pos);
  next = pos;
  return v;
}

/** Writes an HPACK integer with an `n`-bit prefix under `flags` at `pos` and returns the offset after it. */
function writeInt(out: Uint8Array, pos: number, flags: number, n: number, v: number): number {
  const max = (1 << n) - 1;
  if (v < max) {
    out[pos++] = flags | v;
    return pos;
  }
  out[pos++] = flags | max;
  v -= max;
  while (v >= 128) {
    out[pos++] = (v & 0x7f) | 0x80;
    v = v >>> 7;
  }
  out[pos++] = v;
  return pos;
}

/**
 * The decoding side of one HTTP/2 connection's HPACK context: owns the dynamic table the peer's encoder fills.
 * Feed it every header block of the connection, in order; after an `HpackError` the context is out of sync and the
 * connection must end.
 */
export class HpackDecoder {
  readonly #maxTableSize: number;
  /** The size the peer's last size update set (starts at our advertised size). */
  #capacity: number;
  #size = 0;
  // Ring of entries: oldest at #first, newest at (#first + #count - 1) & #mask.
  #names: string[];
  #values: string[];
  #mask: number;
  #first = 0;
  #count = 0;

  /** maxTableSize: the SETTINGS_HEADER_TABLE_SIZE we advertise (default 4096); size updates above it are errors. */
  constructor(maxTableSize: number = DEFAULT_TABLE_SIZE) {
    this.#maxTableSize = maxTableSize;
    this.#capacity = maxTableSize;
    this.#names = new Array<string>(16).fill("");
    this.#values = new Array<string>(16).fill("");
    this.#mask = 15;
  }

  /** Current dynamic table size in octets (for tests/stats). */
  get tableSize(): number {
    return this.#size;
  }

  /**
   * Decodes one complete header block (HEADERS + CONTINUATIONs concatenated) into a flat list
   * [name0, value0, name1, value1, ...]. maxListSize: RFC 9113 §6.5.2 size (sum of name.length + value.length +
   * 32 per field); maxCount: number of fields. Throws HpackError on malformed input; HeaderListTooLargeError
   * (after finishing the block) when over a limit. Names are returned as sent (the codec checks lowercase).
   */
  decode(block: Uint8Array, maxListSize: number, maxCount: number): string[] {
    const list: string[] = [];
    const end = block.length;
    const maxItems = maxCount * 2;
    let listSize = 0;
    let over = false;
    let pos = 0;
    // Size updates are allowed only before the first field (RFC 7541 §4.2), and at most two of them (the smallest
    // and the final size since the last block) — more is pointless and only costs us work.
    let updates = 0;
    let fields = false;
    while (pos < end) {
      const start = pos;
      const b = block[pos]!;
      let name: string;
      let value: string;
      if (b >= 0x80) {
        // Indexed field (§6.1).
        const index = readInt(block, pos, 0x7f);
        pos = next;
        fields = true;
        if (index === 0) throw new HpackError("hpack: indexed field with index 0", start);
        if (over) {
          this.#checkIndex(index, start);
          continue;
        }
        name = this.#name(index, start);
        value = this.#value(index);
      } else if (b >= 0x40) {
        // Literal with incremental indexing (§6.2.1). A string is built when the list or the table can hold it;
        // one too long for both only needs checking, and its entry empties the table (§4.4).
        const index = readInt(block, pos, 0x3f);
        pos = next;
        fields = true;
        const room = over ? -1 : maxListSize - listSize - ENTRY_OVERHEAD;
        const tableRoom = this.#capacity - ENTRY_OVERHEAD;
        let n: string | null;
        if (index === 0) {
          n = this.#readString(block, pos, room > tableRoom ? room : tableRoom);
          pos = next;
        } else {
          n = this.#name(index, start);
        }
        const v = n === null ? null : this.#readString(
          block,
          pos,
          (room > tableRoom ? room : tableRoom) - n.length,
        );
        if (n === null) this.#readString(block, pos, -1);
        pos = next;
        if (n === null || v === null) {
          this.#evict(0);
          over = true;
          continue;
        }
        name = n;
        value = v;
        this.#insert(name, value);
        if (over) continue;
      } else if (b >= 0x20) {
        // Dynamic table size update (§6.3).
        if (fields) throw new HpackError("hpack: dynamic table size update after a field", start);
        if (++updates > 2) throw new HpackError("hpack: more than two dynamic table size updates", start);
        const size = readInt(block, pos, 0x1f);
        pos = next;
        if (size > this.#maxTableSize) {
          throw new HpackError(`hpack: dynamic table size update to ${size} above ${this.#maxTableSize}`, start);
        }
        this.#capacity = size;
        this.#evict(size);
        continue;
      } else {
        // Literal without indexing (§6.2.2) or never indexed (§6.2.3): only the list may need its strings, so
        // one that cannot fit in it is checked and skipped, not built.
        const index = readInt(block, pos, 0x0f);
        pos = next;
        fields = true;
        const room = over ? -1 : maxListSize - listSize - ENTRY_OVERHEAD;
        let n: string | null;
        if (index === 0) {
          n = this.#readString(block, pos, room);
          pos = next;
        } else if (over) {
          this.#checkIndex(index, start);
          n = null;
        } else {
          n = this.#name(index, start);
        }
        const v = this.#readString(block, pos, n === null ? -1 : room - n.length);
        pos = next;
        if (n === null || v === null) {
          over = true;
          continue;
        }
        name = n;
        value = v;
      }
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (listSize > maxListSize || list.length >= maxItems) {
        over = true;
        continue;
      }
      list.push(name, value);
    }
    if (over) {
      throw new HeaderListTooLargeError(
        `hpack: header list larger than ${maxListSize} octets or ${maxCount} fields`,
      );
    }
    return list;
  }

  #checkIndex(index: number, at: number): void {
    if (index > STATIC_COUNT + this.#count) {
      throw new HpackError(`hpack: index ${index} beyond the ${STATIC_COUNT + this.#count} table entries`, at);
    }
  }

  #name(index: number, at: number): string {
    if (index <= STATIC_COUNT) return STATIC_NAMES[index]!;
    if (index > STATIC_COUNT + this.#count) this.#checkIndex(index, at);
    return this.#names[(this.#first + this.#count + STATIC_COUNT - index) & this.#mask]!;
  }

  /** Only after `#name(index)` succeeded. */
  #value(index: number): string {
    if (index <= STATIC_COUNT) return STATIC_VALUES[index]!;
    return this.#values[(this.#first + this.#count + STATIC_COUNT - index) & this.#mask]!;
  }

  /**
   * Reads the string literal at `pos` (§5.2) and returns it, or null without building it when it decodes to more
   * than `limit` chars (a raw string is `len` chars, a Huffman one at least `(8 len - 7) / 30`, codes being at most
   * 30 bits). Either way it is checked (length within the block, valid Huffman) and `next` is set past it.
   */
  #readString(block: Uint8Array, pos: number, limit: number): string | null {
    if (pos >= block.length) throw new HpackError("hpack: string missing at the end of the block", pos);
    const huffman = block[pos]! >= 0x80;
    const len = readInt(block, pos, 0x7f);
    const start = next;
    const end = start + len;
    if (end > block.length) throw new HpackError(`hpack: string of ${len} octets runs past the block`, pos);
    next = end;
    if (!huffman) return len > limit ? null : latin1(block, start, end);
    if (((len * 8 - 7) / 30 | 0) > limit) {
      if (!huffmanValid(block, start, end)) {
        throw new HpackError("hpack: invalid Huffman string (EOS or bad padding)", pos);
      }
      return null;
    }
    const max = huffmanMaxDecodedLength(len);
    let out = scratch;
    if (max > out.length) {
      out = new Uint8Array(max);
      // Decoding is synchronous, so every decoder shares one buffer; a rare huge string gets its own.
      if (max <= SCRATCH_MAX) scratch = out;
    }
    const n = huffmanDecode(block, start, end, out);
    if (n < 0) throw new HpackError("hpack: invalid Huffman string (EOS or bad padding)", pos);
    return n > limit ? null : latin1(out, 0, n);
  }

  #insert(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    if (size > this.#capacity) {
      // §4.4: an entry larger than the table empties it and is not added.
      this.#evict(0);
      return;
    }
    this.#evict(this.#capacity - size);
    if (this.#count > this.#mask) this.#grow();
    const at = (this.#first + this.#count) & this.#mask;
    this.#names[at] = name;
    this.#values[at] = value;
    this.#count++;
    this.#size += size;
  }

  /** Drops the oldest entries until the table holds at most `limit` octets. */
  #evict(limit: number): void {
    while (this.#size > limit) {
      const at = this.#first;
      this.#size -= this.#names[at]!.length + this.#values[at]!.length + ENTRY_OVERHEAD;
      this.#names[at] = "";
      this.#values[at] = "";
      this.#first = (at + 1) & this.#mask;
      this.#count--;
    }
  }

  #grow(): void {
    const cap = (this.#mask + 1) * 2;
    const names = new Array<string>(cap).fill("");
    const values = new Array<string>(cap).fill("");
    for (let i = 0; i < this.#count; i++) {
      const at = (this.#first + i) & this.#mask;
      names[i] = this.#names[at]!;
      values[i] = this.#values[at]!;
    }
    this.#names = names;
    this.#values = values;
    this.#first = 0;
    this.#mask = cap - 1;
  }
}

/**
 * The encoding side of one HTTP/2 connection's HPACK context: owns the dynamic table the peer's decoder mirrors.
 * Blocks must reach the peer in the order they were encoded.
 *
 * Choices per field: an exact static or dynamic table match is sent indexed; `authorization`,
 * `proxy-authorization` and `cookie` values shorter than 20 octets (guessable) are sent never-indexed; a field
 * whose entry would take more than 3/4 of the table is sent without indexing; everything else is added with
 * incremental indexing, naming the field by index when a table holds the name. A string is Huffman-coded only
 * when that is shorter.
 */
export class HpackEncoder {
  #capacity: number;
  /** The smallest size set since the last block, when it is below the final one (§4.2 double update). */
  #minSize: number;
  #pendingUpdate: boolean;
  #size = 0;
  // Ring of entries: #inserted counts every entry ever added, entry k (0 = the first ever) is in slot k & #mask, and
  // the live ones are the newest #count (insertion numbers #inserted - #count .. #inserted - 1).
  #names: string[] = new Array<string>(16).fill("");
  #values: string[] = new Array<string>(16).fill("");
  #mask = 15;
  #count = 0;
  #inserted = 0;
  /** Name → insertion number of the newest live entry with that name. */
  #byName = new Map<string, number>();
  /** Name → value → insertion number of the newest live entry with that field. */
  #byField = new Map<string, Map<string, number>>();

  /** maxTableSize: the peer's SETTINGS_HEADER_TABLE_SIZE (default 4096). */
  constructor(maxTableSize: number = DEFAULT_TABLE_SIZE) {
    this.#capacity = Math.min(maxTableSize, ENCODER_TABLE_CAP);
    this.#minSize = this.#capacity;
    // The peer's decoder starts at its advertised size; if we use less we must tell it.
    this.#pendingUpdate = this.#capacity !== maxTableSize;
  }

  /**
   * The peer changed SETTINGS_HEADER_TABLE_SIZE: the encoder uses min(n, its own cap of 4096) and emits a dynamic
   * table size update at the start of the next block (RFC 7541 §4.2, including the smaller-then-final double update
   * when it shrank and grew between blocks).
   */
  setMaxTableSize(n: number): void {
    const size = Math.min(n, ENCODER_TABLE_CAP);
    if (!this.#pendingUpdate) this.#minSize = size;
    else if (size < this.#minSize) this.#minSize = size;
    this.#capacity = size;
    this.#pendingUpdate = true;
    this.#evict(size);
  }

  /** Current dynamic table size in octets (for tests/stats). */
  get tableSize(): number {
    return this.#size;
  }

  /**
   * Encodes a flat [name, value, ...] list (names lower-case) into one header block. The block is a view of a
   * buffer shared with other blocks (never written again once returned): read or copy it, but do not transfer or
   * reuse its `buffer`.
   */
  encode(kv: readonly string[]): Uint8Array {
    let out = slab;
    let start = slabPos;
    let pos = start;
    if (out.length - pos < 64) {
      out = slab = new Uint8Array(SLAB_SIZE);
      start = pos = slabPos = 0;
    }
    if (this.#pendingUpdate) {
      if (this.#minSize < this.#capacity) pos = writeInt(out, pos, 0x20, 5, this.#minSize);
      pos = writeInt(out, pos, 0x20, 5, this.#capacity);
      this.#pendingUpdate = false;
    }
    const n = kv.length & ~1;
    for (let i = 0; i < n; i += 2) {
      const name = kv[i]!;
      const value = kv[i + 1]!;
      // Worst case: two 6-octet integers, the raw strings, and one representation octet to spare.
      const need = pos + name.length + value.length + 16;
      if (need > out.length) {
        // Move the block so far to a fresh slab, or to a buffer of its own when it is big.
        const used = pos - start;
        const size = used + name.length + value.length + 16;
        const fresh = new Uint8Array(size * 4 > SLAB_SIZE ? size * 2 : SLAB_SIZE);
        fresh.set(out.subarray(start, pos));
        if (out === slab) slabPos = start;
        if (fresh.length === SLAB_SIZE) {
          slab = fresh;
          slabPos = 0;
        }
        out = fresh;
        start = 0;
        pos = used;
      }
      const st = STATIC_BY_NAME.get(name);
      if (st !== undefined) {
        const exact = st.values.get(value);
        if (exact !== undefined) {
          out[pos++] = 0x80 | exact;
          continue;
        }
      }
      if (name === "authorization" || name === "proxy-authorization" || (name === "cookie" && value.length < 20)) {
        pos = this.#literal(out, pos, 0x10, 4, st, name, value);
        continue;
      }
      const values = this.#byField.get(name);
      if (values !== undefined) {
        const seq = values.get(value);
        if (seq !== undefined) {
          pos = writeInt(out, pos, 0x80, 7, this.#inserted - seq + STATIC_COUNT);
          continue;
        }
      }
      const size = name.length + value.length + ENTRY_OVERHEAD;
      if (size * 4 > this.#capacity * 3) {
        pos = this.#literal(out, pos, 0x00, 4, st, name, value);
        continue;
      }
      pos = this.#literal(out, pos, 0x40, 6, st, name, value);
      this.#insert(name, value, size);
    }
    if (out === slab) slabPos = pos;
    return out.subarray(start, pos);
  }

  /** Writes a literal field; the name by index when the static or dynamic table holds it. */
  #literal(
    out: Uint8Array,
    pos: number,
    flags: number,
    prefix: number,
    st: StaticName | undefined,
    name: string,
    value: string,
  ): number {
    let index = 0;
    if (st !== undefined) index = st.index;
    else {
      const seq = this.#byName.get(name);
      if (seq !== undefined) index = this.#inserted - seq + STATIC_COUNT;
    }
    pos = writeInt(out, pos, flags, prefix, index);
    if (index === 0) pos = writeString(out, pos, name);
    return writeString(out, pos, value);
  }

  #insert(name: string, value: string, size: number): void {
    this.#evict(this.#capacity - size);
    if (this.#count > this.#mask) this.#grow();
    const seq = this.#inserted++;
    this.#names[seq & this.#mask] = name;
    this.#values[seq & this.#mask] = value;
    this.#count++;
    this.#size += size;
    this.#byName.set(name, seq);
    let values = this.#byField.get(name);
    if (values === undefined) this.#byField.set(name, values = new Map());
    values.set(value, seq);
  }

  #evict(limit: number): void {
    while (this.#size > limit) {
      const seq = this.#inserted - this.#count;
      const at = seq & this.#mask;
      const name = this.#names[at]!;
      const value = this.#values[at]!;
      this.#size -= name.length + value.length + ENTRY_OVERHEAD;
      this.#names[at] = "";
      this.#values[at] = "";
      this.#count--;
      // A newer entry with the same name or field keeps the map slot; FIFO eviction means it outlives this one.
      if (this.#byName.get(name) === seq) this.#byName.delete(name);
      const values = this.#byField.get(name);
      if (values !== undefined && values.get(value) === seq) {
        values.delete(value);
        if (values.size === 0) this.#byField.delete(name);
      }
    }
  }

  #grow(): void {
    const cap = (this.#mask + 1) * 2;
    const names = new Array<string>(cap).fill("");
    const values = new Array<string>(cap).fill("");
    for (let seq = this.#inserted - this.#count; seq < this.#inserted; seq++) {
      names[seq & (cap - 1)] = this.#names[seq & this.#mask]!;
      values[seq & (cap - 1)] = this.#values[seq & this.#mask]!;
    }
    this.#names = names;
    this.#values = values;
    this.#mask = cap - 1;
  }
}

/** Writes a string literal (§5.2), Huffman-coded when that is shorter. */
function writeString(out: Uint8Array, pos: number, s: string): number {
  const len = s.length;
  const hlen = huffmanEncodedLength(s);
  if (hlen < len) {
    pos = writeInt(out, pos, 0x80, 7, hlen);
    return huffmanEncode(s, out, pos);
  }
  pos = writeInt(out, pos, 0x00, 7, len);
  for (let i = 0; i < len; i++) out[pos++] = s.charCodeAt(i);
  return pos;
}
