/**
 * The gateway's zlib work: one queue for every compress/decompress operation
 * of every connection, and spare zlib contexts to reuse.
 *
 * - At most `concurrency` operations run at once (the rest wait in order,
 *   none is dropped). zlib runs on libuv's small thread pool, which DNS and
 *   file work share; an unbounded number of operations in flight also means
 *   as many output buffers and contexts in use at once (the fragmentation
 *   `ws` documents in its own limiter). One global queue, like `ws`'s,
 *   because the thread pool is global.
 * - A context that starts every message afresh (no context takeover) is not
 *   kept by its connection between messages: it goes back to a free list and
 *   serves the next connection. So an idle compressed connection holds no
 *   zlib memory, and the contexts in use are bounded by the queue's
 *   concurrency (compressors) or by messages actually in progress
 *   (decompressors: a message's frames must all go through one context).
 */
import zlib from 'node:zlib';

/** An operation waiting for its turn; `run` is called once, and must call `done` once. */
export interface ZlibJob {
  run(done: () => void): void;
  /** The owner went away while the job waited: it is dropped without running. */
  cancelled?(): boolean;
}

export class ZlibQueue {
  private running = 0;
  private readonly waiting: ZlibJob[] = [];
  private head = 0;
  private readonly release = (): void => {
    this.running--;
    this.next();
  };

  constructor(public concurrency: number) {}

  /** The most operations that ran at once since the last `resetPeak` (for tests and metrics). */
  peak = 0;

  /** Operations running now (for tests and metrics). */
  get active(): number { return this.running; }
  resetPeak(): void { this.peak = this.running; }
  /** Operations waiting for a slot. */
  get queued(): number { return this.waiting.length - this.head; }

  add(job: ZlibJob): void {
    this.waiting.push(job);
    this.next();
  }

  private next(): void {
    while (this.running < this.concurrency && this.head < this.waiting.length) {
      const job = this.waiting[this.head];
      this.waiting[this.head++] = undefined as unknown as ZlibJob;
      if (this.head === this.waiting.length) {
        this.waiting.length = 0;
        this.head = 0;
      } else if (this.head > 1024 && this.head * 2 > this.waiting.length) {
        this.waiting.splice(0, this.head);
        this.head = 0;
      }
      if (job.cancelled?.() === true) continue;
      this.running++;
      if (this.running > this.peak) this.peak = this.running;
      job.run(this.release);
    }
  }
}

/** The gateway's one queue. Its concurrency is `websocket.compression_concurrency` (set by the composition root). */
export const zlibQueue = new ZlibQueue(8);

export function setZlibConcurrency(n: number): void {
  zlibQueue.concurrency = n;
}

/**
 * Output chunk size of every context: inflated data is checked against the
 * message limit chunk by chunk, so a message over the limit is refused
 * before more than the limit plus one chunk exists.
 */
export const ZLIB_CHUNK = 16 * 1024;

/**
 * Process-wide counts for the metrics (read at scrape time, see
 * deflate-metrics.ts): zlib contexts alive now, and the bytes that went into
 * and came out of compression and decompression. Plain numbers: the hot
 * path adds, nothing else.
 */
export const zlibStats = {
  deflaters: 0,
  inflaters: 0,
  /** Plain bytes compressed, and the compressed bytes they became (sync-flush tails removed). */
  deflatedIn: 0,
  deflatedOut: 0,
  /** Compressed bytes decompressed, and the plain bytes they became. */
  inflatedIn: 0,
  inflatedOut: 0,
};

function deflaterClosed(): void { zlibStats.deflaters--; }
function inflaterClosed(): void { zlibStats.inflaters--; }

/** A new compressor (raw deflate, Z_SYNC_FLUSH on every write: each write's output is complete), counted while it lives. */
export function newDeflater(windowBits: number, memLevel: number, level: number): zlib.DeflateRaw {
  const d = zlib.createDeflateRaw({ windowBits, memLevel, level, chunkSize: ZLIB_CHUNK, flush: zlib.constants.Z_SYNC_FLUSH });
  zlibStats.deflaters++;
  // 'close' follows close(), an error and the end of the stream alike.
  d.once('close', deflaterClosed);
  return d;
}

/** A new decompressor, counted while it lives. */
export function newInflater(windowBits: number): zlib.InflateRaw {
  const i = zlib.createInflateRaw({ windowBits, chunkSize: ZLIB_CHUNK });
  zlibStats.inflaters++;
  i.once('close', inflaterClosed);
  return i;
}

const spareDeflaters = new Map<string, zlib.DeflateRaw[]>();
const spareInflaters = new Map<number, zlib.InflateRaw[]>();

/** Spare contexts kept per kind: enough for every queue slot, no more. */
function spareLimit(): number {
  return zlibQueue.concurrency;
}

/** A compressor from the free list, or a new one. */
export function takeDeflater(windowBits: number, memLevel: number, level: number): zlib.DeflateRaw {
  const spare = spareDeflaters.get(`${windowBits}/${memLevel}/${level}`)?.pop();
  if (spare !== undefined) return spare;
  return newDeflater(windowBits, memLevel, level);
}

/**
 * Back to the free list, its window emptied; closed instead when the list is
 * full. Listeners stay: their owner (see deflate-codec.ts) is cleared instead.
 */
export function giveDeflater(d: zlib.DeflateRaw, windowBits: number, memLevel: number, level: number): void {
  const key = `${windowBits}/${memLevel}/${level}`;
  let list = spareDeflaters.get(key);
  if (list === undefined) spareDeflaters.set(key, (list = []));
  if (list.length >= spareLimit() || d.destroyed) {
    d.close();
    return;
  }
  d.reset();
  list.push(d);
}

export function takeInflater(windowBits: number): zlib.InflateRaw {
  const spare = spareInflaters.get(windowBits)?.pop();
  if (spare !== undefined) return spare;
  return newInflater(windowBits);
}

export function giveInflater(i: zlib.InflateRaw, windowBits: number): void {
  let list = spareInflaters.get(windowBits);
  if (list === undefined) spareInflaters.set(windowBits, (list = []));
  if (list.length >= spareLimit() || i.destroyed || i.readableEnded) {
    i.close();
    return;
  }
  if (i.isPaused()) i.resume();
  i.reset();
  list.push(i);
}

/** Close every spare context (tests, shutdown): their memory is returned at once. */
export function dropSpareContexts(): void {
  for (const list of spareDeflaters.values()) for (const d of list.splice(0)) d.close();
  for (const list of spareInflaters.values()) for (const i of list.splice(0)) i.close();
}

/** Spare contexts held now (for tests and the memory documentation). */
export function spareContexts(): { deflaters: number; inflaters: number } {
  let deflaters = 0;
  let inflaters = 0;
  for (const l of spareDeflaters.values()) deflaters += l.length;
  for (const l of spareInflaters.values()) inflaters += l.length;
  return { deflaters, inflaters };
}
