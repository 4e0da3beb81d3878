/**
 * A cache fill's chunks gathered into writes that cover whole aligned blocks of the file, up to
 * 1 MiB, instead of one write per chunk as the socket hands it over.
 *
 * Why: Linux keeps a file in the page cache in folios whose size follows the writes that made
 * them (xfs since 5.18, ext4 since 6.16): a 1 MiB write at a 1 MiB-aligned offset becomes one
 * large folio, a 64 KiB write one of 64 KiB, and writes at odd offsets, as a socket's odd-sized
 * reads give, mostly small ones and single 4 KiB pages. A 30 MiB blob filled chunk by chunk sat
 * in 782 folios, against 15 for the same bytes written at once. Every sendfile of it walks, pins
 * and releases each folio: the mirror spent about 0.45 ms more kernel time per warm 30 MiB
 * response than Node's own server sending a file of large folios, and the same blob rewritten in
 * one write cost what that server's did (docs/benchmarks.md, "a blob's folios"). These are the
 * blobs a mirror has just filled and serves from memory: its hottest ones.
 *
 * Block sizes double from 64 KiB up to 1 MiB, so a small blob holds little memory and the
 * blocks of a large one are aligned to their size. Bytes wait for the rest of their block at
 * most GATHER_WAIT_MS (fs-writer.ts): readers following the file see them that late at worst.
 */

/** The first block ends here: small blobs and a fill's first bytes are not held for long. */
export const GATHER_FIRST_BLOCK_BYTES = 64 * 1024;
/** The largest block: a larger folio saves little more per send, and a fill holds a block or two in memory. */
export const GATHER_MAX_BLOCK_BYTES = 1024 * 1024;
/** How long gathered bytes may wait for the rest of their block before they are written anyway. */
export const GATHER_WAIT_MS = 10;

/**
 * Where the block that starts at `position` ends: the next multiple of the block size, which is
 * the largest power of two not above `position`, kept between the first and the largest block.
 */
export function gatherBlockEnd(position: number): number {
  let size = GATHER_FIRST_BLOCK_BYTES;
  while (size < GATHER_MAX_BLOCK_BYTES && size * 2 <= position) size *= 2;
  return (Math.floor(position / size) + 1) * size;
}

/** The bytes of one block not written yet, which start at the file's written length. */
export class WriteGather {
  #buffer: Buffer | undefined;
  /** A buffer given back while another was in use: the next `lendOut` leaves the gather this one. */
  #spare: Buffer | undefined;
  #dropped = false;
  #held = 0;
  #blockEnd = 0;

  /** Bytes gathered and not written. */
  get held(): number {
    return this.#held;
  }

  /**
   * Copies from `chunk[offset..]` what fits in the block that starts at `written` (the file's
   * length) and returns how many bytes it took; `full` then says whether to write the block.
   */
  take(written: number, chunk: Uint8Array, offset: number): number {
    if (this.#held === 0) this.#startBlock(written);
    const count = Math.min(chunk.byteLength - offset, this.#blockEnd - written - this.#held);
    this.#buffer!.set(chunk.subarray(offset, offset + count), this.#held);
    this.#held += count;
    return count;
  }

  /** Whether the block that starts at `written` is complete. */
  full(written: number): boolean {
    return this.#held > 0 && written + this.#held === this.#blockEnd;
  }

  /** The gathered bytes, emptied from the gather; a view valid until the next `take`. */
  takeOut(): Buffer {
    const bytes = this.#buffer!.subarray(0, this.#held);
    this.#held = 0;
    return bytes;
  }

  /**
   * The gathered bytes, emptied from the gather with the buffer they are in, for a write that
   * outlives this turn of the loop (the thread pool); `giveBack` them once that write is done.
   */
  lendOut(): Buffer {
    const bytes = this.takeOut();
    this.#buffer = this.#spare;
    this.#spare = undefined;
    return bytes;
  }

  /** Takes back what `lendOut` gave, to gather into again: a slow disk's writes do not allocate a buffer per block. */
  giveBack(lent: Buffer): void {
    if (this.#dropped) return;
    // lendOut's bytes start its buffer, which has an ArrayBuffer of its own (allocUnsafeSlow).
    const buffer = Buffer.from(lent.buffer, 0, lent.buffer.byteLength);
    if (!this.#buffer) this.#buffer = buffer;
    else this.#spare ??= buffer;
  }

  /** Lets go of the buffer, and of anything still gathered. */
  drop(): void {
    this.#dropped = true;
    this.#buffer = undefined;
    this.#spare = undefined;
    this.#held = 0;
  }

  #startBlock(written: number): void {
    this.#blockEnd = gatherBlockEnd(written);
    const size = this.#blockEnd - written;
    // A buffer as large as the blocks so far: they double until the largest, then it is kept.
    if (!this.#buffer || this.#buffer.byteLength < size) this.#buffer = Buffer.allocUnsafeSlow(Math.max(size, this.#buffer?.byteLength ?? 0));
  }
}
