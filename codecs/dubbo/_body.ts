/**
 * A Dubbo body goes out in one frame: the chunks of a stream's body are collected until its end.
 *
 * @module
 */

/** Collects the chunks of one body. */
export class BodyCollector {
  #chunks: Uint8Array[] | undefined;

  /** Takes the next chunk (copied unless it is the last); at `end`, returns the whole body and starts over. */
  add(data: Uint8Array, end: boolean): Uint8Array | undefined {
    if (!end) {
      (this.#chunks ??= []).push(data.slice());
      return undefined;
    }
    const chunks = this.#chunks;
    if (chunks === undefined) return data;
    this.#chunks = undefined;
    chunks.push(data);
    let n = 0;
    for (const c of chunks) n += c.length;
    const all = new Uint8Array(n);
    let at = 0;
    for (const c of chunks) {
      all.set(c, at);
      at += c.length;
    }
    return all;
  }
}
