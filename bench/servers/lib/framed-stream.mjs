/**
 * What the stand-in brokers of the bench (mqtt-echo, stomp-echo) share: a
 * command-line option, and a byte stream read frame by frame, frames spanning
 * reads, the answers to one read sent in one write.
 */

/** The value after `name` on the command line, or `fallback`. */
export function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

/** Returned by a step to end the connection (what was answered before in the same read is dropped). */
export const END = Symbol('end');

/**
 * Serves `socket` frame by frame: `step(buf, off)` reads the frame starting
 * at `off` and returns `{ end, reply }` (`reply` a Buffer to send, undefined
 * for none, or END), or undefined when the frame is not all there yet.
 */
export function serveFrames(socket, step) {
  socket.setNoDelay(true);
  let pending = null;
  socket.on('data', (chunk) => {
    const buf = pending === null ? chunk : Buffer.concat([pending, chunk]);
    pending = null;
    let off = 0;
    const out = [];
    while (off < buf.length) {
      const s = step(buf, off);
      if (s === undefined) break;
      if (s.reply === END) {
        socket.end();
        return;
      }
      if (s.reply !== undefined) out.push(s.reply);
      off = s.end;
    }
    if (off < buf.length) pending = Buffer.from(buf.subarray(off));
    if (out.length === 1) socket.write(out[0]);
    else if (out.length > 1) socket.write(Buffer.concat(out));
  });
  socket.on('error', () => socket.destroy());
}
