/**
 * The fuzzing client judged against servers whose behaviour is known, so the
 * verdicts it gives the gateway mean something:
 * - the `ws` library (passes Autobahn): every case must pass;
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

/** Completes the opening handshake by hand, then hands the socket to `behave`. */
async function rawServer(behave: (socket: import('node:net').Socket) => void): Promise<number> {
  const server = http.createServer();
  // Upgraded sockets are half-open capable and outside closeAllConnections(): track and destroy them.
  const sockets = new Set<import('node:stream').Duplex>();
  server.on('upgrade', (req, socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('end', () => socket.destroy());
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
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

test('the suite has every case of categories 1–7, 9 and 10 (301), with unique ids', () => {
  const perCategory = new Map<number, number>();
  for (const c of CASES) perCategory.set(c.category, (perCategory.get(c.category) ?? 0) + 1);
  assert.deepEqual(Object.fromEntries(perCategory), { 1: 16, 2: 11, 3: 7, 4: 10, 5: 20, 6: 145, 7: 37, 9: 54, 10: 1 });
  assert.equal(new Set(CASES.map((c) => c.id)).size, CASES.length);
  // 6.5–6.23 are the 132 UTF-8 stress sequences.
  assert.equal(CASES.filter((c) => /^6\.(\d+)\./.test(c.id) && Number(c.id.split('.')[1]) >= 5).length, 132);
});

test('the ws library passes every case', async (t) => {
  const port = await wsEcho();
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
