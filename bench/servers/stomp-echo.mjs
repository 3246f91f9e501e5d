#!/usr/bin/env node
/**
 * A stand-in STOMP broker for the `stomp` bench suite, over a byte stream
 * (`--transport tcp`, as RabbitMQ's STOMP port) or over WebSocket
 * (`--transport ws`, as Web-STOMP; one frame per message). CONNECT or STOMP
 * is answered with CONNECTED (1.2, no heart-beats); each SEND with a MESSAGE
 * frame of exactly the SEND's size (content-length set, so the inspector
 * reads it as a broker's), so the load generator's closed loop (one message
 * in flight; the answer must be as long as what it sent) runs through an
 * inspector that parses both directions, without a broker's cost in the
 * measurement. Other frames get no answer. Not a broker: never use it for
 * anything else.
 *
 *   node bench/servers/stomp-echo.mjs --port 9001 [--host 127.0.0.1] [--transport tcp|ws] [--path /echo]
 */
import net from 'node:net';
import { WebSocketServer } from 'ws';
import { arg, serveFrames } from './lib/framed-stream.mjs';

const CONNECTED = Buffer.from('CONNECTED\nversion:1.2\nheart-beat:0,0\nserver:stomp-echo\n\n\0');
const HEAD = 'MESSAGE\nsubscription:0\nmessage-id:1\ndestination:/queue/bench\ncontent-type:text/plain\n';

const replies = new Map();

/** A MESSAGE frame `size` bytes long: headers with content-length, a body of `m`, NUL. */
function messageOf(size) {
  let reply = replies.get(size);
  if (reply !== undefined) return reply;
  // content-length's digits take part of the size: settle on a body length that fits.
  let body = Math.max(0, size - HEAD.length - 'content-length:\n\n'.length - 1);
  while (body > 0 && HEAD.length + `content-length:${body}\n\n`.length + body + 1 > size) body--;
  const head = Buffer.from(`${HEAD}content-length:${body}\n\n`);
  reply = Buffer.alloc(Math.max(size, head.length + 1), 0x6d);
  head.copy(reply, 0);
  reply[reply.length - 1] = 0;
  replies.set(size, reply);
  return reply;
}

/** The answer to one whole frame (`frame` starts at its command), or undefined. */
function answer(frame) {
  if (frame.subarray(0, 5).toString('latin1') === 'SEND\n') return messageOf(frame.length);
  if (/^(CONNECT|STOMP)\r?\n/.test(frame.subarray(0, 9).toString('latin1'))) return CONNECTED;
  return undefined;
}

/** Where the frame starting at `off` ends (past its NUL), or -1 when it is not all there. */
function frameEnd(buf, off) {
  const blank = buf.indexOf('\n\n', off);
  if (blank === -1) return -1;
  const length = /\ncontent-length:(\d+)\n/.exec(buf.toString('latin1', off, blank + 1));
  const nul = length ? blank + 2 + Number(length[1]) : buf.indexOf(0, blank + 2);
  return nul === -1 || nul >= buf.length ? -1 : nul + 1;
}

function serveStream(socket) {
  serveFrames(socket, (buf, off) => {
    if (buf[off] === 0x0a || buf[off] === 0x0d) return { end: off + 1 };
    const end = frameEnd(buf, off);
    return end === -1 ? undefined : { end, reply: answer(buf.subarray(off, end)) };
  });
}

function serveMessages(ws) {
  ws.on('message', (data, isBinary) => {
    let start = 0;
    while (data[start] === 0x0a || data[start] === 0x0d) start++;
    const reply = answer(data.subarray(start));
    if (reply !== undefined) ws.send(reply, { binary: isBinary });
  });
  ws.on('error', () => {});
}

const host = arg('--host', '127.0.0.1');
const port = Number(arg('--port', '0'));
if (arg('--transport', 'tcp') === 'ws') {
  const wss = new WebSocketServer({ host, port, path: arg('--path', '/echo'), handleProtocols: (protocols) => protocols.values().next().value ?? false });
  wss.on('connection', serveMessages);
} else {
  net.createServer(serveStream).listen(port, host);
}
process.on('SIGTERM', () => process.exit(0));
