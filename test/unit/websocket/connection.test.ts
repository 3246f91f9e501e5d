/**
 * WebSocketConnection over real loopback sockets, server role, driven by the
 * independent `ws` client and by our raw client.
 */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import WebSocket from 'ws';
import type { ChannelSink, CloseInfo } from '../../../src/channel.js';
import { WebSocketConnection, type ConnectionOptions } from '../../../src/websocket/connection.js';
import { buildUpgradeResponse, validateUpgradeRequest, HandshakeError } from '../../../src/websocket/handshake.js';
import { OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT } from '../../../src/websocket/constants.js';
import { RawClient, closePayload } from '../../helpers/raw-client.js';
import { heartbeat } from '../../../src/websocket/heartbeat.js';
import { snapshotResources, assertNoLeaks, type ResourceCounts } from '../../helpers/leaks.js';

const DEFAULTS: ConnectionOptions = {
  role: 'server', maxMessage: 4 << 20, maxFragments: 1024, messageTimeout: 0,
  pingInterval: 0, pongTimeout: 0, idleTimeout: 0, closeTimeout: 500, highWaterMark: 1 << 20,
};

interface Recorder {
  messages: { data: Buffer; isBinary: boolean }[];
  closeInfo?: CloseInfo;
  closed: Promise<CloseInfo>;
  violations: { code: number; reason: string }[];
}

interface Harness {
  port: number;
  conns: WebSocketConnection[];
  recorders: Recorder[];
  /** resolves with the next server-side connection */
  next(): Promise<{ conn: WebSocketConnection; rec: Recorder }>;
  close(): Promise<void>;
}

type SinkFactory = (conn: WebSocketConnection, rec: Recorder) => ChannelSink;

const echoSink: SinkFactory = (conn, rec) => ({
  onMessage(data, isBinary) {
    rec.messages.push({ data: Buffer.from(data), isBinary });
    conn.send(data, isBinary);
  },
});

async function startServer(opts: Partial<ConnectionOptions> = {}, makeSink: SinkFactory = echoSink, attach = true): Promise<Harness> {
  const conns: WebSocketConnection[] = [];
  const recorders: Recorder[] = [];
  const waiting: ((v: { conn: WebSocketConnection; rec: Recorder }) => void)[] = [];
  const ready: { conn: WebSocketConnection; rec: Recorder }[] = [];
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket, head) => {
    let info;
    try {
      info = validateUpgradeRequest(req);
    } catch (err) {
      const e = err as HandshakeError;
      socket.end(`HTTP/1.1 ${e.status} Bad\r\nConnection: close\r\n\r\n`);
      return;
    }
    socket.write(buildUpgradeResponse(info.key, ''));
    const rec = { messages: [], violations: [] } as unknown as Recorder;
    let resolveClosed!: (i: CloseInfo) => void;
    rec.closed = new Promise((r) => { resolveClosed = r; });
    const conn = new WebSocketConnection(socket as import('node:net').Socket, head, {
      ...DEFAULTS, ...opts, onViolation: (code, reason) => rec.violations.push({ code, reason }),
    });
    const sink = makeSink(conn, rec);
    const userOnClose = sink.onClose;
    const wrapped: ChannelSink = Object.assign(Object.create(sink) as ChannelSink, {
      onClose(info: CloseInfo) {
        assert.equal(rec.closeInfo, undefined, 'onClose called twice');
        rec.closeInfo = info;
        userOnClose?.call(sink, info);
        resolveClosed(info);
      },
    });
    if (attach) conn.attach(wrapped);
    else (conn as unknown as { pendingSink: ChannelSink }).pendingSink = wrapped;
    conns.push(conn);
    recorders.push(rec);
    const item = { conn, rec };
    const w = waiting.shift();
    if (w) w(item);
    else ready.push(item);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port, conns, recorders,
    next() {
      const r = ready.shift();
      if (r) return Promise.resolve(r);
      return new Promise((resolve) => waiting.push(resolve));
    },
    async close() {
      for (const c of conns) c.terminate();
      server.close();
      await once(server, 'close');
    },
  };
}

async function wsClient(port: number): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  await once(ws, 'open');
  return ws;
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve) => ws.once('message', (data: Buffer, isBinary: boolean) => resolve({ data, isBinary })));
}

async function rawUpgraded(port: number): Promise<RawClient> {
  const c = await RawClient.connect({ port });
  const res = await c.upgrade('/');
  assert.equal(res.status, 101);
  return c;
}

let before: ResourceCounts;
let h: Harness | undefined;
beforeEach(() => {
  before = snapshotResources();
});
afterEach(async () => {
  await h?.close();
  h = undefined;
  await assertNoLeaks(before, { timeoutMs: 2000 });
  // The shared heartbeat interval is unref'd, so the resource check cannot
  // see it: check directly that every connection left the scheduler.
  for (let i = 0; i < 200 && heartbeat.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(heartbeat.size, 0, 'connections left in the heartbeat');
});

describe('WebSocketConnection with the ws client', () => {
  it('echoes text and binary of 0, 125, 126, 65535, 65536 bytes and 1 MiB', async () => {
    h = await startServer();
    const ws = await wsClient(h.port);
    for (const len of [0, 125, 126, 65535, 65536, 1 << 20]) {
      const bin = Buffer.alloc(len);
      for (let i = 0; i < len; i++) bin[i] = i & 0xff;
      const p1 = nextMessage(ws);
      ws.send(bin, { binary: true });
      const m1 = await p1;
      assert.equal(m1.isBinary, true);
      assert.ok(m1.data.equals(bin), `binary ${len}`);
      const text = 'é'.repeat(len >> 1);
      const p2 = nextMessage(ws);
      ws.send(text);
      const m2 = await p2;
      assert.equal(m2.isBinary, false);
      assert.equal(m2.data.toString(), text, `text ${len}`);
    }
    ws.close(1000);
    const info = await h.recorders[0].closed;
    assert.deepEqual(info, { code: 1000, reason: '', wasClean: true, initiator: 'remote' });
  });

  it('reassembles fragmented messages for a whole-message sink', async () => {
    h = await startServer();
    const ws = await wsClient(h.port);
    const p = nextMessage(ws);
    ws.send('Hello, ', { fin: false });
    ws.send('fragmented ', { fin: false });
    ws.send('world', { fin: true });
    assert.equal((await p).data.toString(), 'Hello, fragmented world');
    assert.equal(h.conns[0].messagesIn, 1);
    assert.equal(h.conns[0].bytesIn, 23);
    ws.close();
    await h.recorders[0].closed;
  });

  it('streaming sink receives pieces and relays them with sendFragment', async () => {
    const pieces: { len: number; first: boolean; fin: boolean; total?: number }[] = [];
    h = await startServer({}, (conn) => ({
      streaming: true,
      onFragment(data, isBinary, first, fin, total) {
        pieces.push({ len: data.length, first, fin, total });
        conn.sendFragment(data, isBinary, first, fin);
      },
    }));
    const ws = await wsClient(h.port);
    const big = Buffer.alloc(300_000, 7);
    const p = nextMessage(ws);
    ws.send(big);
    const m = await p;
    assert.ok(m.data.equals(big));
    assert.ok(pieces.length >= 1);
    assert.equal(pieces[0].first, true);
    assert.equal(pieces[0].total, 300_000);
    assert.equal(pieces.at(-1)?.fin, true);
    const p2 = nextMessage(ws);
    ws.send('a', { fin: false });
    ws.send('b', { fin: true });
    assert.equal((await p2).data.toString(), 'ab');
    ws.close();
    await h.recorders[0].closed;
  });

  it('answers pings with identical payload', async () => {
    h = await startServer();
    const ws = await wsClient(h.port);
    for (const payload of [Buffer.alloc(0), Buffer.from('hi'), Buffer.alloc(125, 0xfe)]) {
      ws.ping(payload);
      const [pong] = (await once(ws, 'pong')) as [Buffer];
      assert.ok(pong.equals(payload));
    }
    ws.close();
    await h.recorders[0].closed;
  });

  it('client closes with 4000 + reason: echoed, sink sees a clean remote close', async () => {
    h = await startServer();
    const ws = await wsClient(h.port);
    ws.close(4000, 'bye now');
    const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
    assert.equal(code, 4000);
    assert.equal(reason.toString(), '');
    assert.deepEqual(await h.recorders[0].closed, { code: 4000, reason: 'bye now', wasClean: true, initiator: 'remote' });
  });

  it('server closes with 1001: client sees 1001, sink sees a clean local close', async () => {
    h = await startServer();
    const ws = await wsClient(h.port);
    const { conn, rec } = await h.next();
    conn.close(1001, 'going away');
    assert.equal(conn.closed, true);
    assert.equal(conn.send('late', false), false, 'no data after our Close');
    const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
    assert.equal(code, 1001);
    assert.equal(reason.toString(), 'going away');
    // ws echoes our code and reason in its reply.
    assert.deepEqual(await rec.closed, { code: 1001, reason: 'going away', wasClean: true, initiator: 'local' });
  });

  it('keepalive pings are answered by a live peer: the connection stays open', async () => {
    h = await startServer({ pingInterval: 60, pongTimeout: 100 });
    const ws = await wsClient(h.port);
    let pings = 0;
    ws.on('ping', () => pings++);
    while (pings < 3) await once(ws, 'ping');
    assert.equal(ws.readyState, WebSocket.OPEN);
    assert.deepEqual(h.recorders[0].violations, []);
    ws.close();
    await h.recorders[0].closed;
  });

  it('backpressure: send returns false for a client that does not read; onDrain once it reads', async () => {
    let drained = 0;
    let drainResolve!: () => void;
    const drainP = new Promise<void>((r) => { drainResolve = r; });
    h = await startServer({ highWaterMark: 64 * 1024 }, () => ({ onDrain() { drained++; drainResolve(); } }));
    const raw = await rawUpgraded(h.port);
    raw.socket.pause();
    const { conn } = await h.next();
    const chunk = Buffer.alloc(256 * 1024, 1);
    let sent = 0;
    while (conn.send(chunk, true)) {
      sent++;
      assert.ok(sent < 1000, 'send never reported full');
    }
    assert.ok(conn.bufferedAmount > 64 * 1024);
    assert.equal(drained, 0);
    raw.socket.resume();
    await drainP;
    assert.equal(drained, 1);
    assert.ok(conn.bufferedAmount <= 64 * 1024);
    raw.destroy();
    await h.recorders[0].closed;
  });

  it('pongs are coalesced while the socket is congested: only the latest ping is answered', async () => {
    const got: string[] = [];
    h = await startServer({ highWaterMark: 16 * 1024 }, () => ({ onMessage(d) { got.push(d.toString()); } }));
    const raw = await rawUpgraded(h.port);
    raw.socket.pause();
    const { conn } = await h.next();
    // Fill the outbound path until the connection reports congestion that
    // outlives the tick (frames wait in the tick's batch, so a false from
    // send can come before the kernel's buffers are full).
    const big = Buffer.alloc(1 << 20, 1);
    let n = 0;
    for (;;) {
      while (conn.send(big, true)) assert.ok(++n < 200);
      await new Promise((r) => setImmediate(r));
      if (conn.bufferedAmount > 16 * 1024) break;
      assert.ok(++n < 200);
    }
    const pings = [];
    for (let i = 0; i < 50; i++) pings.push(raw.frame({ opcode: OP_PING, payload: `p${i}` }));
    pings.push(raw.frame({ opcode: OP_TEXT, payload: 'marker' }));
    await raw.write(Buffer.concat(pings));
    while (got.length < 1) await new Promise((r) => setImmediate(r));
    raw.socket.resume();
    const pongs: string[] = [];
    while (!pongs.includes('p49')) {
      const fr = await raw.readFrame(5000);
      if (fr.opcode === OP_PONG) pongs.push(fr.payload.toString());
    }
    assert.deepEqual(pongs, ['p49']);
    raw.destroy();
    await h.recorders[0].closed;
  });

  it('pause stops delivery; resume delivers the rest in order', async () => {
    const got: string[] = [];
    h = await startServer({}, (conn) => ({
      onMessage(data) {
        got.push(data.toString());
        if (got.length === 1) conn.pause();
      },
    }));
    const ws = await wsClient(h.port);
    const { conn } = await h.next();
    ws.send('one');
    ws.send('two');
    ws.send('three');
    while (got.length < 1) await new Promise((r) => setImmediate(r));
    // Every byte has left the client: what the server has not delivered, it holds (read or not).
    while (ws.bufferedAmount > 0) await new Promise((r) => setImmediate(r));
    assert.deepEqual(got, ['one'], 'nothing more delivered while paused');
    conn.resume();
    while (got.length < 3) await new Promise((r) => setImmediate(r));
    assert.deepEqual(got, ['one', 'two', 'three']);
    ws.close();
    await h.recorders[0].closed;
  });
});

describe('WebSocketConnection with the raw client', () => {
  const violation = async (frames: Buffer, code: number, opts: Partial<ConnectionOptions> = {}): Promise<void> => {
    h = await startServer(opts);
    // A canary connection must keep echoing throughout.
    const canary = await wsClient(h.port);
    const raw = await rawUpgraded(h.port);
    await raw.write(frames);
    const close = await raw.readClose();
    assert.equal(close.code, code);
    await raw.expectClosed();
    const rec = h.recorders[1];
    const info = await rec.closed;
    assert.equal(info.wasClean, false);
    assert.equal(info.code, 1006);
    assert.equal(info.initiator, 'local');
    assert.deepEqual(rec.violations.map((v) => v.code), [code]);
    const p = nextMessage(canary);
    canary.send('still here');
    assert.equal((await p).data.toString(), 'still here');
    canary.close();
    await h.recorders[0].closed;
  };

  it('unmasked client frame → close 1002, TCP closed, violation reported', () =>
    violation(RawClient.prototype.frame({ opcode: OP_TEXT, payload: 'x', mask: false }), 1002));
  it('reserved opcode → 1002', () => violation(RawClient.prototype.frame({ opcode: 3 }), 1002));
  it('invalid UTF-8 → 1007', () => violation(RawClient.prototype.frame({ opcode: OP_TEXT, payload: Buffer.from([0xc0, 0xaf]) }), 1007));
  it('message too big → 1009 from the header', () =>
    violation(RawClient.prototype.frame({ opcode: OP_BINARY, declaredLength: 2000 }).subarray(0, 8), 1009, { maxMessage: 1000 }));
  it('too many fragments → 1009', () => {
    const frames = [RawClient.prototype.frame({ opcode: OP_TEXT, fin: false })];
    for (let i = 0; i < 5; i++) frames.push(RawClient.prototype.frame({ opcode: OP_CONT, fin: false }));
    return violation(Buffer.concat(frames), 1009, { maxFragments: 4 });
  });
  it('invalid close code → 1002', () => violation(RawClient.prototype.frame({ opcode: OP_CLOSE, payload: closePayload(1005) }), 1002));

  it('bad frames chopped one byte per write give the same close code', async () => {
    h = await startServer();
    const raw = await rawUpgraded(h.port);
    await raw.sendFrame({ opcode: OP_TEXT, payload: Buffer.from([0x41, 0xed, 0xa0, 0x80]) }, { chop: 1 });
    assert.equal((await raw.readClose()).code, 1007);
    await raw.expectClosed();
  });

  it('ping in the middle of a fragmented message is answered before the message completes', async () => {
    h = await startServer();
    const raw = await rawUpgraded(h.port);
    await raw.sendFrame({ opcode: OP_TEXT, payload: 'part1', fin: false });
    await raw.sendFrame({ opcode: OP_PING, payload: 'mid' });
    const pong = await raw.readFrame();
    assert.equal(pong.opcode, OP_PONG);
    assert.equal(pong.payload.toString(), 'mid');
    assert.equal(pong.masked, false, 'server frames are unmasked');
    await raw.sendFrame({ opcode: OP_CONT, payload: 'part2', fin: true });
    const echo = await raw.readFrame();
    assert.equal(echo.opcode, OP_TEXT);
    assert.equal(echo.payload.toString(), 'part1part2');
    raw.destroy();
    await h.recorders[0].closed;
  });

  it('peer Close is echoed, then the server closes TCP first', async () => {
    h = await startServer();
    const raw = await rawUpgraded(h.port);
    await raw.sendFrame({ opcode: OP_CLOSE, payload: closePayload(1000, 'done') });
    await raw.sendFrame({ opcode: OP_TEXT, payload: 'ignored after close' });
    const c = await raw.readClose();
    assert.equal(c.code, 1000);
    await raw.expectClosed();
    assert.equal(raw.unread.length, 0, 'nothing after the Close (the late text was not echoed)');
    assert.deepEqual(await h.recorders[0].closed, { code: 1000, reason: 'done', wasClean: true, initiator: 'remote' });
    assert.equal(h.recorders[0].messages.length, 0);
  });

  it('a flood of pings in one read gets one pong, for the most recent ping (RFC 6455 §5.5.3)', { timeout: 10_000 }, async () => {
    h = await startServer();
    const raw = await rawUpgraded(h.port);
    const pings = Array.from({ length: 500 }, (_, i) => raw.frame({ opcode: OP_PING, payload: `p${i}` }));
    await raw.write(Buffer.concat([...pings, raw.frame({ opcode: OP_TEXT, payload: 'after' })]));
    const pongs: string[] = [];
    let echoed = false;
    while (!echoed || pongs.at(-1) !== 'p499') {
      const f = await raw.readFrame(5000);
      if (f.opcode === OP_PONG) pongs.push(f.payload.toString());
      else if (f.opcode === OP_TEXT) echoed = f.payload.toString() === 'after';
    }
    assert.ok(pongs.length < 50, `500 pings sent in one write were answered by ${pongs.length} pongs`);
    assert.deepEqual([...pongs].sort(), pongs.map(String).sort(), 'pongs come in order');
    raw.destroy();
    await h.recorders[0].closed;
  });

  it('after a violation close the connection stops reading: a flood behind it is not read at line rate', { timeout: 15_000 }, async () => {
    h = await startServer({ closeTimeout: 1000 });
    // Half-open allowed: the flooder keeps writing after the server's FIN, as an attacker would.
    const socket = net.connect({ port: h.port, host: '127.0.0.1', allowHalfOpen: true });
    socket.on('error', () => { /* the reset at the close timeout */ });
    await once(socket, 'connect');
    socket.write(RawClient.handshakeRequest());
    await once(socket, 'data');
    socket.write(RawClient.prototype.frame({ opcode: OP_TEXT, payload: 'x', mask: false }));
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    const gone = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    let open = true;
    void gone.then(() => { open = false; });
    // Keep writing until the server drops the connection at its close timeout.
    while (open) {
      if (!socket.write(chunk)) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), gone]);
    }
    const accepted = socket.bytesWritten - socket.writableLength;
    assert.deepEqual(h.recorders[0].violations.map((v) => v.code), [1002], 'the unmasked frame failed the connection');
    assert.ok(accepted < 32 * 1024 * 1024, `the server took ${accepted} bytes after failing the connection`);
    const info = await h.recorders[0].closed;
    assert.equal(info.code, 1006, 'dropped at the close timeout, no Close from the peer');
  });

  it('a connection paused for backpressure still sends keepalive pings', { timeout: 10_000 }, async () => {
    h = await startServer({ pingInterval: 100, pongTimeout: 100 }, (conn) => ({ onMessage() { conn.pause(); } }));
    const raw = await rawUpgraded(h.port);
    await raw.sendFrame({ opcode: OP_TEXT, payload: 'pause now' });
    const ping = await raw.readFrame(3000);
    assert.equal(ping.opcode, OP_PING, 'a ping arrives while the server is not reading');
    assert.equal(h.recorders[0].closeInfo, undefined, 'and no pong deadline ran out while it could not read the pong');
    raw.destroy();
    await h.recorders[0].closed;
  });

  it('sendStallTimeout: a queue above the high-water mark that nothing leaves drops the connection', { timeout: 15_000 }, async () => {
    let server!: WebSocketConnection;
    h = await startServer({ sendStallTimeout: 300, highWaterMark: 16 * 1024 }, (conn) => { server = conn; return {}; });
    const raw = await rawUpgraded(h.port);
    raw.socket.pause(); // reads nothing
    await new Promise((r) => setImmediate(r));
    const chunk = Buffer.alloc(64 * 1024, 1);
    for (let i = 0; i < 512 && server.bufferedAmount < 8 * 1024 * 1024; i++) server.send(chunk, true);
    const info = await h.recorders[0].closed;
    assert.equal(info.code, 1006, 'dropped, no close handshake through a stuck queue');
    assert.deepEqual(h.recorders[0].violations.map((v) => v.reason), ['send stalled'], 'reported as a stalled send');
    raw.destroy();
  });

  it('empty Close is answered with an empty Close', async () => {
    h = await startServer();
    const raw = await rawUpgraded(h.port);
    await raw.sendFrame({ opcode: OP_CLOSE });
    const c = await raw.readClose();
    assert.equal(c.code, 1005);
    assert.equal(c.payload.length, 0);
    await raw.expectClosed();
    assert.equal((await h.recorders[0].closed).code, 1005);
  });

  it('after our Close, data frames from the peer are not delivered; its Close completes the handshake', async () => {
    h = await startServer();
    const raw = await rawUpgraded(h.port);
    const { conn, rec } = await h.next();
    conn.close(4001, 'app closing');
    const c = await raw.readClose();
    assert.deepEqual([c.code, c.reason], [4001, 'app closing']);
    await raw.sendFrame({ opcode: OP_TEXT, payload: 'too late' });
    await raw.sendFrame({ opcode: OP_PING, payload: 'late ping' });
    await raw.sendFrame({ opcode: OP_CLOSE, payload: closePayload(4001) });
    await raw.expectClosed();
    assert.equal(raw.unread.length, 0, 'no pong, no echo after our Close');
    assert.deepEqual(rec.messages, []);
    assert.deepEqual(await rec.closed, { code: 4001, reason: '', wasClean: true, initiator: 'local' });
  });

  it('close timeout: a peer that never answers our Close is dropped', async () => {
    h = await startServer({ closeTimeout: 150 });
    const raw = await rawUpgraded(h.port);
    const { conn, rec } = await h.next();
    const t0 = Date.now();
    conn.close(1000, 'bye');
    assert.equal((await raw.readClose()).code, 1000);
    await raw.expectClosed();
    assert.ok(Date.now() - t0 >= 140, 'not before the close timeout');
    assert.deepEqual(await rec.closed, { code: 1006, reason: '', wasClean: false, initiator: 'local' });
  });

  it('idle timeout: close 1001 after silence', async () => {
    h = await startServer({ idleTimeout: 150 });
    const raw = await rawUpgraded(h.port);
    const c = await raw.readClose(3000);
    assert.equal(c.code, 1001);
    await raw.sendFrame({ opcode: OP_CLOSE, payload: closePayload(1001) });
    await raw.expectClosed();
    assert.deepEqual(h.recorders[0].violations.map((v) => v.code), [1001]);
    const info = await h.recorders[0].closed;
    assert.equal(info.wasClean, true);
  });

  it('keepalive: a peer that does not answer pings is dropped after the pong timeout', async () => {
    h = await startServer({ pingInterval: 80, pongTimeout: 120 });
    const raw = await rawUpgraded(h.port);
    const ping = await raw.readFrame(3000);
    assert.equal(ping.opcode, OP_PING);
    await raw.expectClosed(3000);
    const info = await h.recorders[0].closed;
    assert.equal(info.code, 1006);
    assert.equal(info.wasClean, false);
    assert.deepEqual(h.recorders[0].violations.map((v) => v.reason), ['pong timeout']);
  });

  it('message timeout: a fragmented message left open → close 1008', async () => {
    h = await startServer({ messageTimeout: 150 });
    const raw = await rawUpgraded(h.port);
    await raw.sendFrame({ opcode: OP_TEXT, payload: 'start', fin: false });
    const c = await raw.readClose(3000);
    assert.equal(c.code, 1008);
    await raw.expectClosed();
    assert.deepEqual(h.recorders[0].violations.map((v) => v.code), [1008]);
  });

  it('message timeout also bounds one large frame trickling in', async () => {
    h = await startServer({ messageTimeout: 150 });
    const raw = await rawUpgraded(h.port);
    // The header and a few bytes of a 1000-byte frame, then nothing more.
    await raw.write(raw.frame({ opcode: OP_BINARY, payload: Buffer.alloc(1000) }).subarray(0, 20));
    assert.equal((await raw.readClose(3000)).code, 1008);
    await raw.expectClosed();
  });

  it('frames that arrive with the upgrade (head) are parsed, and queued until attach', async () => {
    const got: string[] = [];
    h = await startServer({}, () => ({ onMessage(d) { got.push(d.toString()); } }), false);
    const raw = await RawClient.connect({ port: h.port });
    await raw.write(Buffer.concat([
      Buffer.from(RawClient.handshakeRequest()),
      raw.frame({ opcode: OP_TEXT, payload: 'early1' }),
      raw.frame({ opcode: OP_TEXT, payload: 'early2' }),
    ]));
    assert.equal((await raw.readHttpResponse()).status, 101);
    const { conn } = await h.next();
    // The frames came with the upgrade request: the connection was made with them (its head) and holds them.
    assert.deepEqual(got, [], 'nothing delivered before attach');
    conn.attach((conn as unknown as { pendingSink: ChannelSink }).pendingSink);
    while (got.length < 2) await new Promise((r) => setImmediate(r));
    assert.deepEqual(got, ['early1', 'early2']);
    raw.destroy();
    await h.recorders[0].closed;
  });

  it('abrupt TCP close without a Close frame → 1006, initiator transport', async () => {
    h = await startServer();
    const raw = await rawUpgraded(h.port);
    raw.end();
    assert.deepEqual(await h.recorders[0].closed, { code: 1006, reason: '', wasClean: false, initiator: 'transport' });
  });

  it('terminate destroys at once; whenClosed runs once, after the sink, also when registered late', async () => {
    const order: string[] = [];
    h = await startServer({}, () => ({ onClose() { order.push('sink'); } }));
    const raw = await rawUpgraded(h.port);
    const { conn, rec } = await h.next();
    conn.whenClosed((info) => order.push(`watcher:${info.code}`));
    conn.terminate();
    await raw.expectClosed();
    assert.deepEqual(await rec.closed, { code: 1006, reason: '', wasClean: false, initiator: 'local' });
    assert.deepEqual(order, ['sink', 'watcher:1006']);
    let late: CloseInfo | undefined;
    conn.whenClosed((info) => { late = info; });
    assert.equal(late?.code, 1006);
  });

  it('a sink that throws: close 1011, error reported, process unharmed', async () => {
    const errors: unknown[] = [];
    h = await startServer({ onError: (e) => errors.push(e) }, () => ({ onMessage() { throw new Error('sink bug'); } }));
    const raw = await rawUpgraded(h.port);
    await raw.sendFrame({ opcode: OP_TEXT, payload: 'boom' });
    assert.equal((await raw.readClose()).code, 1011);
    await raw.expectClosed();
    assert.equal((errors[0] as Error).message, 'sink bug');
  });

  it('sendFragment writes TEXT/BINARY first, CONT after, with FIN per flag', async () => {
    h = await startServer();
    const raw = await rawUpgraded(h.port);
    const { conn } = await h.next();
    conn.sendFragment(Buffer.from('a'), true, true, false);
    conn.sendFragment(Buffer.from('b'), true, false, false);
    conn.sendFragment(Buffer.from('c'), true, false, true);
    const frames = [await raw.readFrame(), await raw.readFrame(), await raw.readFrame()];
    assert.deepEqual(frames.map((fr) => [fr.opcode, fr.fin, fr.payload.toString()]), [[OP_BINARY, false, 'a'], [OP_CONT, false, 'b'], [OP_CONT, true, 'c']]);
    raw.destroy();
    await h.recorders[0].closed;
  });
});
