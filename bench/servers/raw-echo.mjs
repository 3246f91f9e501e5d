#!/usr/bin/env node
/**
 * A deliberately minimal WebSocket echo server on raw `net`, used only to
 * check the load generator's headroom (`node bench/run.mjs --candidate raw`):
 * it does about the least work a correct-enough echo can do (streams each
 * frame through: header rewritten, payload unmasked word-wise as it arrives,
 * one writev per read), so the rate the load generator reaches against it is
 * a ceiling on what the harness can measure.
 *
 * Not a real server: no UTF-8 checks, no limits, no fragmentation rules, no
 * close handshake beyond echoing Close. Never use it for anything else.
 *
 *   node bench/servers/raw-echo.mjs --port 9001 [--host 127.0.0.1]
 */
import net from 'node:net';
import crypto from 'node:crypto';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

/** XOR `buf` in place with the 4-byte mask, starting at mask phase `phase`; word-wise where aligned. */
function unmask(buf, mask, phase) {
  const len = buf.length;
  let i = 0;
  while (i < len && ((buf.byteOffset + i) & 3) !== 0) {
    buf[i] ^= mask[(phase + i) & 3];
    i++;
  }
  const words = (len - i) >> 2;
  if (words > 0) {
    const p = phase + i;
    const m32 = (mask[p & 3] | (mask[(p + 1) & 3] << 8) | (mask[(p + 2) & 3] << 16) | (mask[(p + 3) & 3] << 24)) | 0;
    const view = new Int32Array(buf.buffer, buf.byteOffset + i, words);
    for (let w = 0; w < words; w++) view[w] ^= m32;
    i += words * 4;
  }
  while (i < len) {
    buf[i] ^= mask[(phase + i) & 3];
    i++;
  }
}

function serve(socket) {
  socket.setNoDelay(true);
  let head = Buffer.alloc(0);
  let pending = null; // a partial frame header
  let remaining = 0; // payload bytes of the current frame still to come
  let phase = 0; // mask phase within the current frame
  let mask = Buffer.alloc(4);
  let isClose = false;

  function onFrames(chunk) {
    const data = pending === null ? chunk : Buffer.concat([pending, chunk]);
    pending = null;
    const out = [];
    let off = 0;
    while (off < data.length) {
      if (remaining > 0) {
        const take = Math.min(remaining, data.length - off);
        const piece = Buffer.allocUnsafe(take);
        data.copy(piece, 0, off, off + take);
        unmask(piece, mask, phase);
        out.push(piece);
        phase = (phase + take) & 3;
        remaining -= take;
        off += take;
        if (remaining === 0 && isClose) {
          socket.end(Buffer.concat(out));
          return;
        }
        continue;
      }
      const avail = data.length - off;
      if (avail < 2) break;
      const b0 = data[off];
      let len = data[off + 1] & 0x7f;
      const hlen = len === 126 ? 4 : len === 127 ? 10 : 2;
      if (avail < hlen + 4) break;
      if (len === 126) len = data.readUInt16BE(off + 2);
      else if (len === 127) len = data.readUInt32BE(off + 6);
      const header = Buffer.allocUnsafe(hlen);
      header[0] = b0;
      header[1] = data[off + 1] & 0x7f;
      if (hlen > 2) data.copy(header, 2, off + 2, off + hlen);
      out.push(header);
      mask = Buffer.from(data.subarray(off + hlen, off + hlen + 4));
      phase = 0;
      remaining = len;
      isClose = (b0 & 0x0f) === 0x8;
      off += hlen + 4;
      if (remaining === 0 && isClose) {
        socket.end(Buffer.concat(out));
        return;
      }
    }
    if (off < data.length) pending = Buffer.from(data.subarray(off));
    if (out.length === 1) socket.write(out[0]);
    else if (out.length > 1) {
      socket.cork();
      for (const b of out) socket.write(b);
      socket.uncork();
    }
  }

  function onHead(chunk) {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    const text = head.subarray(0, end).toString('latin1');
    const key = /^sec-websocket-key:\s*(\S+)/im.exec(text)?.[1] ?? '';
    const accept = crypto.createHash('sha1').update(key + GUID).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.removeListener('data', onHead);
    socket.on('data', onFrames);
    const rest = head.subarray(end + 4);
    if (rest.length > 0) onFrames(Buffer.from(rest));
  }

  socket.on('data', onHead);
  socket.on('error', () => {});
}

const port = Number(arg('--port', '9001'));
const host = arg('--host', '127.0.0.1');
const server = net.createServer(serve);
server.listen(port, host, () => process.stdout.write(`${JSON.stringify({ listening: port })}\n`));
process.on('SIGTERM', () => process.exit(0));
