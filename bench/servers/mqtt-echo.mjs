#!/usr/bin/env node
/**
 * A minimal MQTT "broker" for the `mqtt` bench suite, on raw `net`: it
 * answers CONNECT with CONNACK (accepted), PINGREQ with PINGRESP, SUBSCRIBE
 * with SUBACK (QoS 0), and sends every PUBLISH straight back to its sender,
 * byte for byte (a QoS 0 PUBLISH reads the same in both directions) — a
 * subscriber to everything it publishes, without a broker's cost in the
 * measurement. Packets may span reads. Not a broker: never use it for
 * anything else.
 *
 *   node bench/servers/mqtt-echo.mjs --port 9001 [--host 127.0.0.1]
 */
import net from 'node:net';
import { arg, END, serveFrames } from './lib/framed-stream.mjs';

const CONNACK_311 = Buffer.from([0x20, 0x02, 0x00, 0x00]);
const CONNACK_5 = Buffer.from([0x20, 0x03, 0x00, 0x00, 0x00]);
const PINGRESP = Buffer.from([0xd0, 0x00]);

/** Remaining Length at `off`: [value, bytes], or undefined when it is not all there. */
function remainingLength(buf, off) {
  let value = 0;
  for (let i = 0, mul = 1; i < 4; i++, mul *= 128) {
    if (off + 1 + i >= buf.length) return undefined;
    const b = buf[off + 1 + i];
    value += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return [value, i + 1];
  }
  throw new Error('bad Remaining Length');
}

function serve(socket) {
  let level = 4;
  serveFrames(socket, (buf, off) => {
    const rl = remainingLength(buf, off);
    if (rl === undefined) return undefined;
    const end = off + 1 + rl[1] + rl[0];
    if (end > buf.length) return undefined;
    const type = buf[off] >> 4;
    const body = off + 1 + rl[1];
    if (type === 3) return { end, reply: buf.subarray(off, end) };
    if (type === 1) {
      level = buf[body + 6];
      return { end, reply: level === 5 ? CONNACK_5 : CONNACK_311 };
    }
    if (type === 12) return { end, reply: PINGRESP };
    if (type === 8) {
      const n = level === 5 ? 1 : 0;
      return { end, reply: Buffer.from([0x90, 2 + n + 1, buf[body], buf[body + 1], ...(n ? [0] : []), 0]) };
    }
    if (type === 14) return { end, reply: END };
    return { end };
  });
}

const server = net.createServer(serve);
server.listen(Number(arg('--port', '0')), arg('--host', '127.0.0.1'));
process.on('SIGTERM', () => process.exit(0));
