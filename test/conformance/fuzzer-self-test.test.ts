/**
 * The fuzzing client judged against servers whose behaviour is known, so the
 * verdicts it gives the gateway mean something:
 * - the `ws` library with perMessageDeflate (passes Autobahn): every case must pass;
 * - `ws` told to skip UTF-8 validation, a server that ignores every frame and
 *   one that drops TCP on any byte: the cases they break must be judged
 *   failing, with Autobahn's verdicts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type ServerOptions } from 'ws';
import { CASES, type ConformanceCase } from './cases.js';
import { isPassing, runCase, type CaseResult } from './runner.js';

const closers: Array<() => Promise<void>> = [];
after(async () => { for (const close of closers) await close(); });

/** A `ws` echo server with the limits raised to Autobahn's sizes. */
async function wsEcho(extra: ServerOptions = {}): Promise<number> {
  const wss = new WebSocketServer({
    host: '127.0.0.1', port: 0, perMessageDeflate: false,
    maxPayload: 32 * 1024 * 1024, maxFragments: 1 << 20, maxBufferedChunks: 1 << 21, ...extra,
  });
  wss.on('connection', (ws) => {
    ws.on('error', () => { /* ws closes the connection itself; the error is the verdict's business */ });
    ws.on('message', (data: Buffer, isBinary) => ws.send(data, { binary: isBinary }));
  });
  await once(wss, 'listening');
  closers.push(() => new Promise((r) => { for (const c of wss.clients) c.terminate(); wss.close(() => r()); }));
  return (wss.address() as AddressInfo).port;
}

/** Completes the opening handshake by hand (accepting `extensions` when given), then hands the socket to `behave`. */
async function rawServer(behave: (socket: import('node:net').Socket) => void, extensions?: string): Promise<number> {
  const server = http.createServer();
  // Upgraded sockets are half-open capable and outside closeAllConnections(): track and destroy them.
  const sockets = new Set<import('node:stream').Duplex>();
  server.on('upgrade', (req, socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('end', () => socket.destroy());
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    const ext = extensions !== undefined ? `Sec-WebSocket-Extensions: ${extensions}\r\n` : '';
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${ext}\r\n`);
    socket.on('error', () => { /* the client drops it */ });
    behave(socket as import('node:net').Socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(() => new Promise((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  }));
  return (server.address() as AddressInfo).port;
}

const byId = (id: string): ConformanceCase => {
  const c = CASES.find((x) => x.id === id);
  assert.ok(c, `no case ${id}`);
  return c;
};
const run = (id: string, port: number): Promise<CaseResult> => runCase(byId(id), { host: '127.0.0.1', port, path: '/' }, { maxAfterMs: 2000 });

test('the suite has every case of categories 1–7, 9, 10, 12 and 13 (517), with unique ids', () => {
  const perCategory = new Map<number, number>();
  for (const c of CASES) perCategory.set(c.category, (perCategory.get(c.category) ?? 0) + 1);
  assert.deepEqual(Object.fromEntries(perCategory), { 1: 16, 2: 11, 3: 7, 4: 10, 5: 20, 6: 145, 7: 37, 9: 54, 10: 1, 12: 90, 13: 126 });
  assert.equal(new Set(CASES.map((c) => c.id)).size, CASES.length);
  // 6.5–6.23 are the 132 UTF-8 stress sequences.
  assert.equal(CASES.filter((c) => /^6\.(\d+)\./.test(c.id) && Number(c.id.split('.')[1]) >= 5).length, 132);
});

test('the ws library passes every case', { timeout: 60 * 60_000 }, async (t) => {
  // As Autobahn runs it against ws: compression on (cases 1–10 offer none).
  const port = await wsEcho({ perMessageDeflate: true });
  for (const c of CASES) {
    await t.test(c.id, async () => {
      const r = await runCase(c, { host: '127.0.0.1', port, path: '/' }, { maxAfterMs: 10_000 });
      assert.ok(isPassing(r.verdict), `${c.id}: ${r.verdict} — ${r.result} / ${r.resultClose}\n${r.wirelog.join('\n')}`);
    });
  }
});

test('a server that does not validate UTF-8 fails the UTF-8 cases', async () => {
  const port = await wsEcho({ skipUTF8Validation: true });
  for (const id of ['6.3.1', '6.3.2', '6.8.1', '6.20.1']) {
    const r = await run(id, port);
    assert.equal(r.verdict, 'FAILED', `${id}: ${r.verdict} ${r.result}`);
    assert.match(r.result, /not valid UTF-8/);
  }
  // Valid text still passes there.
  assert.equal((await run('6.2.1', port)).verdict, 'OK');
});

test('a server that ignores every frame: no echo is FAILED, a protocol error it does not act on is FAILED BY CLIENT', async () => {
  const port = await rawServer(() => { /* reads and ignores everything, never closes */ });
  const echo = await run('1.1.2', port);
  assert.equal(echo.verdict, 'FAILED');
  assert.equal(echo.received.length, 0);
  const rsv = await run('3.1', port);
  assert.equal(rsv.behavior, 'OK');
  assert.equal(rsv.behaviorClose, 'FAILED BY CLIENT');
  assert.equal(rsv.verdict, 'FAILED BY CLIENT');
  assert.equal(rsv.droppedByMe, true);
});

test('a server that drops TCP on any byte: dropping is a valid way to fail, not to echo', async () => {
  const port = await rawServer((socket) => socket.once('data', () => socket.destroy()));
  assert.equal((await run('2.5', port)).verdict, 'OK');
  assert.equal((await run('4.1.1', port)).verdict, 'OK');
  const echo = await run('1.1.1', port);
  assert.equal(echo.verdict, 'FAILED');
  assert.equal(echo.resultClose, 'The connection was failed by the wrong endpoint');
});

test('a server that answers with a masked frame or the wrong close code is judged for it', async () => {
  // Echo one masked text frame: a protocol violation by the server.
  const masked = await rawServer((socket) => socket.once('data', () => {
    socket.write(Buffer.from([0x81, 0x82, 1, 2, 3, 4, 0x68 ^ 1, 0x69 ^ 2]));
  }));
  const r = await run('1.1.2', masked);
  assert.equal(r.verdict, 'FAILED');
  assert.match(r.result, /masked frame/);
  // Close 1000 in answer to a reserved opcode: WRONG CODE.
  const polite = await rawServer((socket) => socket.once('data', () => {
    socket.end(Buffer.from([0x88, 0x02, 0x03, 0xe8]));
  }));
  const w = await run('4.1.1', polite);
  assert.equal(w.verdict, 'WRONG CODE');
  assert.equal(w.remoteCloseCode, 1000);
});

test('compression cases: a server that declines is UNIMPLEMENTED, one that echoes undecodable data FAILED', async () => {
  const plain = await wsEcho();
  assert.equal((await run('12.1.1', plain)).verdict, 'UNIMPLEMENTED');
  // Accepts permessage-deflate, then echoes each message's frames with RSV1 but the payload reversed: not deflate data.
  const broken = await rawServer((socket) => socket.on('data', (d: Buffer) => {
    const len = d[1] & 0x7f;
    if (len > 125 || (d[0] & 0x0f) >= 8) return;
    const payload = Buffer.from(d.subarray(6, 6 + len)).map((b, i) => b ^ d[2 + (i & 3)]).reverse();
    socket.write(Buffer.concat([Buffer.from([0xc0 | (d[0] & 0x0f), payload.length]), payload]));
  }), 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
  const r = await run('12.1.1', broken);
  assert.equal(r.verdict, 'FAILED', `${r.verdict}: ${r.result}`);
  assert.match(r.result, /does not inflate|differs/);
});
