#!/usr/bin/env node
/**
 * The load generator: a child process (started by bench/lib/loadgen-pool.mjs)
 * that drives WebSocket connections over raw `net` sockets, controlled over
 * the IPC channel. It treats every server the same way: same handshake bytes,
 * same pre-built frames, same window.
 *
 * - Frames are built once per phase: one masked binary frame (FIN, opcode 2)
 *   with a fixed mask key, repeated `window` times back to back in one buffer.
 *   Refilling k slots is one write of a zero-copy slice of that buffer.
 * - Server frames are parsed by a small streaming parser: header (2/4/10
 *   bytes, may straddle reads), payload counted, never copied (except in the
 *   `verify` step, which compares bytes exactly). Fragmented echoes are
 *   accepted; every echoed message must be binary and exactly `size` bytes.
 * - Pings are answered with pongs; a Close from the server is answered and
 *   counted as an error unless we asked for it.
 *
 * Compression (the `compression` suite): with `deflate` a phase's message is
 * compressed once (permessage-deflate, RFC 7692: raw deflate, sync flush,
 * tail removed; the connection offered `client_no_context_takeover`, so one
 * compressed payload is valid for every message) and sent with RSV1; echoes
 * may come back compressed (RSV1): `verify` inflates and compares them, the
 * load phases only count them. With `text` the payload is JSON-like text.
 * Bytes on the wire (frames both ways, as read from and written to the
 * sockets) are counted per phase and reported by `mark`.
 *
 * Modes:
 *   throughput — each connection keeps between `window - refillAt` and
 *                `window` messages in flight: once `refillAt` echoes are in,
 *                that many are sent again in one write (fewer, larger writes:
 *                the load generator spends less per message than the server;
 *                default refillAt = window/2, the echo suite uses window/4).
 *   latency    — each connection keeps 1 message in flight; the round trip
 *                (last byte written → last byte of the echo read) is recorded
 *                in a log-scale histogram (buckets of 1 % width).
 *
 * A subprotocol's opening exchange (e.g. MQTT CONNECT / CONNACK) is `hello`:
 * one message sent on every connection, one answer of any size awaited.
 * `verify` and `start` take `payloadHex` to send that exact message (e.g. an
 * MQTT PUBLISH, which an MQTT echo returns byte for byte) instead of the
 * generated payload. `start` with `anyType` takes an answer of the right size
 * as text or binary (a STOMP inspector in front of a byte stream sends UTF-8
 * frames as text, a passthrough relay sends binary).
 *
 * IPC requests are `{ id, cmd, ... }`; every request gets `{ id, ok, ... }`.
 */
import net from 'node:net';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { performance } from 'node:perf_hooks';
import { HIST_SCALE } from './lib/stats.mjs';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MASK = Buffer.from([0x5a, 0xc3, 0x96, 0x2f]);
/** Histogram: bucket i holds round trips of about exp(i / HIST_SCALE) microseconds. */
const HIST_SIZE = 2400; // up to e^24 µs: far beyond anything measured

const OP_CONT = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

// ---------------------------------------------------------------------------
// Frames

/** One masked client frame (FIN set) carrying `payload`; `compressed` sets RSV1 (permessage-deflate). */
export function buildFrame(opcode, payload, mask = MASK, compressed = false) {
  const len = payload.length;
  const hlen = len < 126 ? 6 : len < 65536 ? 8 : 14;
  const frame = Buffer.allocUnsafe(hlen + len);
  frame[0] = 0x80 | (compressed ? 0x40 : 0) | opcode;
  if (len < 126) {
    frame[1] = 0x80 | len;
  } else if (len < 65536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(len, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    frame.writeUInt32BE(len >>> 0, 6);
  }
  mask.copy(frame, hlen - 4);
  for (let i = 0; i < len; i++) frame[hlen + i] = payload[i] ^ mask[i & 3];
  return frame;
}

/** JSON-like text of exactly `size` bytes (ASCII): chat-style records with varying fields, as an app would send. */
export function makeJson(size) {
  let s = '{"type":"batch","items":[';
  for (let i = 0; s.length < size; i++) {
    s += `${i ? ',' : ''}{"id":${100000 + i * 37},"user":"user${(i * 7) % 97}","room":"room-${i % 5}",` +
      `"text":"message number ${i} in the room, with some words","ts":${1700000000000 + i * 1013},"ok":${i % 2 === 0},"tags":["t${i % 3}","t${i % 4}"]}`;
  }
  return Buffer.from(s.slice(0, size), 'latin1');
}

/** The payload of a compressed message (RFC 7692 §7.2.1). */
function deflateMessage(payload) {
  const out = zlib.deflateRawSync(payload, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}

function makePayload(size) {
  // Deterministic, not all-zero (so masking is real work), not valid text.
  const p = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) p[i] = (i * 131 + 7) & 0xff;
  return p;
}

// ---------------------------------------------------------------------------
// Global state of this load generator

const conns = [];
const errors = [];
let errorCount = 0;

const load = {
  mode: 'none', // 'none' | 'throughput' | 'latency' | 'verify'
  sending: false,
  size: 0,
  frameLen: 0,
  frames: Buffer.alloc(0), // `window` frames back to back
  refillAt: 1, // write more once this many slots of the window are free (window/2)
  completed: 0, // echoed messages completed since the phase started
  recording: false,
  hist: new Uint32Array(HIST_SIZE),
  payload: Buffer.alloc(0),
  /** Messages are compressed (permessage-deflate) and may be echoed compressed. */
  deflate: false,
  /** Messages are text (JSON-like), not binary. */
  text: false,
  /** Answers may be text or binary, whichever was sent. */
  anyType: false,
  /** Bytes read from and written to the sockets since the phase began. */
  wireIn: 0,
  wireOut: 0,
};

/** Write to a connection's socket, counting the bytes on the wire. */
function send(conn, bytes) {
  load.wireOut += bytes.length;
  conn.socket.write(bytes);
}

function fail(conn, message) {
  errorCount++;
  if (errors.length < 10) errors.push(`conn ${conn ? conn.index : '-'}: ${message}`);
}

// ---------------------------------------------------------------------------
// One connection

class Conn {
  constructor(index, socket) {
    this.index = index;
    this.socket = socket;
    this.open = true; // upgraded and not closed
    this.closing = false; // we sent a Close
    // parser
    this.partial = null;
    this.remaining = 0;
    this.opcode = 0;
    this.fin = false;
    this.ctrl = false;
    this.ctrlChunks = [];
    this.inMessage = false;
    this.msgOpcode = 0;
    this.msgLen = 0;
    this.msgCompressed = false;
    this.collect = null; // array of chunks when verifying
    // load
    this.inflight = 0;
    this.refill = 0;
    this.sentAt = 0;
    this.onVerified = null;
    this.onHello = null;
  }

  onData(chunk) {
    load.wireIn += chunk.length;
    if (this.partial !== null) {
      chunk = Buffer.concat([this.partial, chunk]);
      this.partial = null;
    }
    const len = chunk.length;
    let off = 0;
    while (off < len) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, len - off);
        if (this.ctrl) {
          this.ctrlChunks.push(chunk.subarray(off, off + take));
        } else {
          this.msgLen += take;
          if (this.collect !== null) this.collect.push(chunk.subarray(off, off + take));
        }
        this.remaining -= take;
        off += take;
        if (this.remaining === 0) this.endFrame();
        continue;
      }
      const avail = len - off;
      if (avail < 2) {
        this.partial = Buffer.from(chunk.subarray(off));
        break;
      }
      const b0 = chunk[off];
      const b1 = chunk[off + 1];
      let plen = b1 & 0x7f;
      const hlen = plen === 126 ? 4 : plen === 127 ? 10 : 2;
      if (avail < hlen) {
        this.partial = Buffer.from(chunk.subarray(off));
        break;
      }
      if ((b1 & 0x80) !== 0) {
        this.protocolError('server sent a masked frame');
        return;
      }
      const opcode = b0 & 0x0f;
      // RSV1 marks the first frame of a compressed message when permessage-deflate is in use.
      if ((b0 & 0x70) !== 0 && !(load.deflate && (b0 & 0x70) === 0x40 && (opcode === OP_TEXT || opcode === OP_BINARY))) {
        this.protocolError('server set RSV bits');
        return;
      }
      if (plen === 126) plen = chunk.readUInt16BE(off + 2);
      else if (plen === 127) plen = chunk.readUInt32BE(off + 2) * 2 ** 32 + chunk.readUInt32BE(off + 6);
      off += hlen;
      this.fin = (b0 & 0x80) !== 0;
      this.opcode = opcode;
      if (opcode >= 0x8) {
        this.ctrl = true;
        this.ctrlChunks = [];
      } else {
        this.ctrl = false;
        if (opcode === OP_CONT) {
          if (!this.inMessage) {
            this.protocolError('continuation without a message');
            return;
          }
        } else {
          if (this.inMessage) {
            this.protocolError('new message inside a fragmented one');
            return;
          }
          this.inMessage = true;
          this.msgOpcode = opcode;
          this.msgLen = 0;
          this.msgCompressed = (b0 & 0x40) !== 0;
        }
      }
      this.remaining = plen;
      if (plen === 0) this.endFrame();
    }
    if (this.refill >= load.refillAt && load.sending) {
      const k = this.refill;
      this.refill = 0;
      this.inflight += k;
      send(this, load.frames.subarray(0, k * load.frameLen));
    }
  }

  endFrame() {
    if (this.ctrl) {
      this.ctrl = false;
      const payload = this.ctrlChunks.length === 1 ? this.ctrlChunks[0] : Buffer.concat(this.ctrlChunks);
      this.ctrlChunks = [];
      if (this.opcode === OP_PING) {
        if (!this.closing) send(this, buildFrame(OP_PONG, payload));
      } else if (this.opcode === OP_CLOSE) {
        this.onServerClose(payload);
      } else if (this.opcode !== OP_PONG) {
        this.protocolError(`reserved control opcode ${this.opcode}`);
      }
      return;
    }
    if (!this.fin) return;
    this.inMessage = false;
    this.onMessage();
  }

  onMessage() {
    if (this.onHello !== null) {
      const done = this.onHello;
      this.onHello = null;
      this.inflight--;
      done();
      return;
    }
    const expected = load.text ? OP_TEXT : OP_BINARY;
    if (this.msgOpcode !== expected && !load.anyType) fail(this, `echo has opcode ${this.msgOpcode}, expected ${expected}`);
    // A compressed echo's size on the wire is not the message's: `verify` inflates and compares it.
    if (!this.msgCompressed && this.msgLen !== load.size) fail(this, `echo is ${this.msgLen} bytes, expected ${load.size}`);
    load.completed++;
    this.inflight--;
    switch (load.mode) {
      case 'throughput':
        if (load.sending) this.refill++;
        break;
      case 'latency': {
        const now = performance.now();
        if (load.recording) {
          const us = (now - this.sentAt) * 1000;
          const i = us <= 1 ? 0 : Math.min(HIST_SIZE - 1, Math.round(Math.log(us) * HIST_SCALE));
          load.hist[i]++;
        }
        if (load.sending) {
          this.inflight++;
          this.sentAt = performance.now();
          send(this, load.frames.subarray(0, load.frameLen));
        }
        break;
      }
      case 'verify': {
        let got = Buffer.concat(this.collect);
        this.collect = null;
        if (this.msgCompressed) {
          try {
            got = zlib.inflateRawSync(Buffer.concat([got, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
          } catch (err) {
            fail(this, `compressed echo does not inflate: ${err.message}`);
          }
        }
        if (!got.equals(load.payload)) fail(this, 'echoed payload differs from what was sent');
        const done = this.onVerified;
        this.onVerified = null;
        if (done) done();
        break;
      }
      default:
        fail(this, 'unexpected message');
    }
  }

  onServerClose(payload) {
    const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
    if (!this.closing) {
      fail(this, `server closed the connection (code ${code})`);
      this.closing = true;
      this.socket.write(buildFrame(OP_CLOSE, payload.subarray(0, 2)));
    }
    this.open = false;
  }

  protocolError(message) {
    fail(this, message);
    this.open = false;
    this.socket.destroy();
  }

  /** Close handshake: send Close 1000, wait for the server to close TCP (or time out). */
  close(timeoutMs) {
    return new Promise((resolve) => {
      if (this.socket.destroyed) {
        resolve();
        return;
      }
      const timer = setTimeout(() => {
        this.socket.destroy();
      }, timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (!this.closing && this.open) {
        this.closing = true;
        const body = Buffer.alloc(2);
        body.writeUInt16BE(1000, 0);
        this.socket.write(buildFrame(OP_CLOSE, body));
      } else {
        this.socket.end();
      }
    });
  }
}

// ---------------------------------------------------------------------------
// Opening connections

function openOne(index, { host, port, path, headers, timeoutMs }) {
  return new Promise((resolve, reject) => {
    const key = crypto.randomBytes(16).toString('base64');
    const accept = crypto.createHash('sha1').update(key + GUID).digest('base64');
    const socket = net.connect({ host, port });
    socket.setNoDelay(true);
    let head = Buffer.alloc(0);
    let settled = false;
    let upgraded = null;
    const timer = setTimeout(() => finish(new Error('handshake timed out')), timeoutMs);

    function finish(err, conn) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        socket.destroy();
        reject(err);
      } else {
        resolve(conn);
      }
    }

    socket.on('connect', () => {
      let req = `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`;
      for (const [name, value] of Object.entries(headers ?? {})) req += `${name}: ${value}\r\n`;
      socket.write(`${req}\r\n`);
    });

    function onHead(chunk) {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 16384) finish(new Error('response head too large'));
        return;
      }
      const text = head.subarray(0, end).toString('latin1');
      const lines = text.split('\r\n');
      if (!/^HTTP\/1\.1 101 /.test(lines[0])) {
        finish(new Error(`handshake refused: ${lines[0]}`));
        return;
      }
      const acceptLine = lines.find((l) => /^sec-websocket-accept:/i.test(l));
      if (!acceptLine || acceptLine.slice(acceptLine.indexOf(':') + 1).trim() !== accept) {
        finish(new Error('bad Sec-WebSocket-Accept'));
        return;
      }
      socket.removeListener('data', onHead);
      const conn = new Conn(index, socket);
      upgraded = conn;
      socket.on('data', (c) => conn.onData(c));
      socket.on('close', () => {
        conn.open = false;
      });
      socket.on('end', () => {
        if (!conn.closing) fail(conn, 'server ended the TCP connection');
        socket.end();
      });
      finish(null, conn);
      const rest = head.subarray(end + 4);
      if (rest.length > 0) conn.onData(Buffer.from(rest));
    }

    socket.on('data', onHead);
    socket.on('error', (err) => {
      if (!settled) finish(err);
      else if (upgraded !== null && !upgraded.closing) fail(upgraded, `socket error: ${err.message}`);
    });
    socket.on('close', () => finish(new Error('closed during handshake')));
  });
}

async function cmdConnect({ host, port, path, count, concurrency = 100, headers, timeoutMs = 20000 }) {
  const t0 = performance.now();
  let next = 0;
  let failed = 0;
  const firstErrors = [];
  async function worker() {
    while (next < count) {
      next++;
      try {
        const conn = await openOne(conns.length, { host, port, path, headers, timeoutMs });
        conn.index = conns.length;
        conns.push(conn);
      } catch (err) {
        failed++;
        if (firstErrors.length < 5) firstErrors.push(err.message);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { connected: conns.length, failed, errors: firstErrors, ms: performance.now() - t0 };
}

// ---------------------------------------------------------------------------
// Phases

function setPhase(mode, size, window, refillAt, { deflate = false, text = false, payloadHex, anyType = false } = {}) {
  load.mode = mode;
  load.deflate = deflate;
  load.text = text;
  load.anyType = anyType;
  load.payload = payloadHex !== undefined ? Buffer.from(payloadHex, 'hex') : text ? makeJson(size) : makePayload(size);
  load.size = load.payload.length;
  const frame = buildFrame(text ? OP_TEXT : OP_BINARY, deflate ? deflateMessage(load.payload) : load.payload, MASK, deflate);
  load.frameLen = frame.length;
  load.frames = Buffer.concat(Array.from({ length: window }, () => frame));
  load.refillAt = refillAt ?? Math.max(1, Math.floor(window / 2));
  load.completed = 0;
  load.recording = false;
  load.hist.fill(0);
  load.wireIn = 0;
  load.wireOut = 0;
}

/** Send one message (hex) on every open connection and wait for one answer on each. */
async function cmdHello({ hex, timeoutMs = 10000 }) {
  const frame = buildFrame(OP_BINARY, Buffer.from(hex, 'hex'));
  const live = conns.filter((c) => c.open);
  await Promise.all(live.map((c) => new Promise((resolve) => {
    const timer = setTimeout(() => {
      fail(c, 'no answer to hello');
      resolve();
    }, timeoutMs);
    c.onHello = () => {
      clearTimeout(timer);
      resolve();
    };
    c.inflight++;
    c.socket.write(frame);
  })));
  return { greeted: live.length };
}

async function cmdVerify({ size, timeoutMs = 10000, deflate, text, payloadHex }) {
  setPhase('verify', size, 1, undefined, { deflate, text, payloadHex });
  const live = conns.filter((c) => c.open);
  await Promise.all(live.map((c) => new Promise((resolve) => {
    const timer = setTimeout(() => {
      fail(c, 'no echo within the verify timeout');
      resolve();
    }, timeoutMs);
    c.collect = [];
    c.onVerified = () => {
      clearTimeout(timer);
      resolve();
    };
    c.inflight++;
    send(c, load.frames);
  })));
  load.mode = 'none';
  return { verified: live.length };
}

function cmdStart({ mode, size, window, refillAt, deflate, text, payloadHex, anyType }) {
  if (mode !== 'throughput' && mode !== 'latency') throw new Error(`unknown mode ${mode}`);
  const w = mode === 'latency' ? 1 : window;
  setPhase(mode, size, w, mode === 'latency' ? 1 : refillAt, { deflate, text, payloadHex, anyType });
  load.sending = true;
  for (const c of conns) {
    if (!c.open) continue;
    c.inflight += w;
    c.refill = 0;
    c.sentAt = performance.now();
    send(c, load.frames);
  }
  return { connections: conns.filter((c) => c.open).length, window: w, frameLen: load.frameLen };
}

let markState = null;

function cmdMark() {
  const t = performance.now();
  const cpu = process.cpuUsage();
  const result = { t, completed: load.completed, errors: errorCount };
  if (markState !== null) {
    const dt = t - markState.t;
    result.interval = {
      ms: dt,
      wireIn: load.wireIn - markState.wireIn,
      wireOut: load.wireOut - markState.wireOut,
      messages: load.completed - markState.completed,
      rate: ((load.completed - markState.completed) * 1000) / dt,
      cpuBusy: ((cpu.user - markState.cpu.user) + (cpu.system - markState.cpu.system)) / 1000 / dt,
    };
    if (load.mode === 'latency') {
      const hist = [];
      for (let i = 0; i < HIST_SIZE; i++) if (load.hist[i] > 0) hist.push([i, load.hist[i]]);
      result.interval.hist = hist;
    }
    markState = null;
    load.recording = false;
  } else {
    markState = { t, completed: load.completed, cpu, wireIn: load.wireIn, wireOut: load.wireOut };
    load.hist.fill(0);
    load.recording = true;
  }
  return result;
}

async function cmdStop({ timeoutMs = 15000 }) {
  load.sending = false;
  load.recording = false;
  markState = null;
  const t0 = performance.now();
  while (conns.some((c) => c.open && c.inflight > 0) && performance.now() - t0 < timeoutMs) {
    await new Promise((r) => setTimeout(r, 5));
  }
  const stuck = conns.filter((c) => c.open && c.inflight > 0).length;
  if (stuck > 0) fail(null, `${stuck} connections still had messages in flight after ${timeoutMs} ms`);
  load.mode = 'none';
  return { drained: stuck === 0 };
}

function cmdStatus() {
  return {
    connections: conns.length,
    open: conns.filter((c) => c.open).length,
    errors: errorCount,
    errorMessages: errors.slice(),
  };
}

async function cmdClose({ timeoutMs = 5000 }) {
  await Promise.all(conns.map((c) => c.close(timeoutMs)));
  const n = conns.length;
  conns.length = 0;
  return { closed: n };
}

const handlers = {
  connect: cmdConnect,
  hello: cmdHello,
  verify: cmdVerify,
  start: cmdStart,
  mark: cmdMark,
  stop: cmdStop,
  status: cmdStatus,
  close: cmdClose,
};

process.on('message', async (msg) => {
  const handler = handlers[msg.cmd];
  try {
    if (!handler) throw new Error(`unknown command ${msg.cmd}`);
    const result = await handler(msg);
    process.send({ id: msg.id, ok: true, ...result });
  } catch (err) {
    process.send({ id: msg.id, ok: false, error: err.message });
  }
});

process.on('disconnect', () => process.exit(0));
