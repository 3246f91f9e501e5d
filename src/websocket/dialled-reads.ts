/**
 * Reads of the plain TCP sockets we dial (backend links), through `net`'s
 * documented `onread` option instead of the socket's Readable stream: the
 * kernel's bytes land in one shared buffer and are copied out into a Buffer
 * of their own, which is emitted as the socket's 'data' event — so every
 * listener (the handshake, then the connection) reads them as before.
 *
 * Why: per read, Node's stream layer costs more than the copy — the read
 * pushed through `readableAddChunk`, a `maybeReadMore` tick and generic
 * property loads in shared stream code (bench/RESULTS.md, "Sixth session:
 * proxy per-message path"). The gateway's side of a backend link is ours
 * from end to end, so it can skip that; accepted client sockets come from
 * the HTTP server and keep the stream.
 *
 * The shared buffer is only valid during the callback: the copy is what
 * listeners get and may keep (a parser holding the rest of a read while
 * paused, a large frame written by reference). Pausing works as before:
 * `socket.pause()` stops reading at the handle (net.Socket does that for
 * `onread` sockets), and no read is delivered until `resume()`.
 */
// The global `Buffer` is an accessor in Node 20: the import is a plain binding (this runs per read).
import { Buffer } from 'node:buffer';
import type { OnReadOpts, Socket } from 'node:net';

/** Node's own read size for stream sockets. */
const READ_SIZE = 64 * 1024;
const readBuffer = Buffer.allocUnsafeSlow(READ_SIZE);
/** allocUnsafeSlow: the buffer owns its ArrayBuffer from byte 0. */
const readBytes = readBuffer.buffer;

function emitCopy(this: Socket, n: number): boolean {
  const chunk = Buffer.allocUnsafe(n);
  chunk.set(new Uint8Array(readBytes, 0, n));
  this.emit('data', chunk);
  return true;
}

/** The `onread` option for a dialled plain TCP socket (`net.connect({ ..., onread: DIALLED_READS })`). */
export const DIALLED_READS: OnReadOpts = { buffer: readBuffer, callback: emitCopy as OnReadOpts['callback'] };
