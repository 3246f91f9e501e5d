/**
 * connectWebSocket: our engine in client role against the independent `ws`
 * server, and against fake backends that answer the upgrade wrongly.
 */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import https from 'node:https';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { WebSocketServer } from 'ws';
import { connectWebSocket } from '../../../src/websocket/client.js';
import { HandshakeError, acceptKey } from '../../../src/websocket/handshake.js';
import { BackendError } from '../../../src/errors.js';
import type { CloseInfo } from '../../../src/channel.js';
import { parseServerFrame } from '../../helpers/raw-client.js';
import { heartbeat } from '../../../src/websocket/heartbeat.js';
import { snapshotResources, assertNoLeaks, type ResourceCounts } from '../../helpers/leaks.js';

let before: ResourceCounts;
beforeEach(() => {
  before = snapshotResources();
});
afterEach(async () => {
  await assertNoLeaks(before, { timeoutMs: 2000 });
  // The shared heartbeat interval is unref'd, so the resource check cannot
  // see it: check directly that every connection left the scheduler.
  for (let i = 0; i < 200 && heartbeat.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(heartbeat.size, 0, 'connections left in the heartbeat');
});

/** A raw TCP server that answers every request with `response(key)`. */
async function fakeBackend(response: (key: string) => string | null): Promise<{ port: number; received: Buffer[]; sockets(): net.Socket[]; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const received: Buffer[] = [];
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let head = '';
    s.on('data', (d) => {
      received.push(d);
      if (head.includes('\r\n\r\n')) return;
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const key = /sec-websocket-key: *(\S+)/i.exec(head)?.[1] ?? '';
      const r = response(key);
      if (r !== null) s.write(r, 'latin1');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    received,
    sockets: () => [...sockets],
    async close() {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

describe('connectWebSocket', () => {
  it('talks to a ws echo server: text, binary, fragments, subprotocol, clean close', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: (p) => (p.has('chat') ? 'chat' : false) });
    await once(wss, 'listening');
    wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
    const port = (wss.address() as net.AddressInfo).port;
    const conn = await connectWebSocket(`ws://127.0.0.1:${port}/echo`, { protocols: ['other', 'chat'] });
    assert.equal(conn.protocol, 'chat');
    assert.equal(conn.admission, undefined);
    const got: { data: string; isBinary: boolean }[] = [];
    let closeInfo: CloseInfo | undefined;
    const closed = new Promise<void>((resolve) => {
      conn.attach({
        onMessage(data, isBinary) { got.push({ data: data.toString(), isBinary }); },
        onClose(info) { closeInfo = info; resolve(); },
      });
    });
    conn.send('hello', false);
    conn.send(Buffer.from('bin'), true);
    conn.sendFragment(Buffer.from('frag'), false, true, false);
    conn.sendFragment(Buffer.from('mented'), false, false, true);
    const big = 'x'.repeat(100_000);
    conn.send(big, false);
    while (got.length < 4) await new Promise((r) => setImmediate(r));
    assert.deepEqual(got.slice(0, 3), [{ data: 'hello', isBinary: false }, { data: 'bin', isBinary: true }, { data: 'fragmented', isBinary: false }]);
    assert.equal(got[3].data, big);
    conn.close(1000, 'done');
    await closed;
    assert.deepEqual(closeInfo, { code: 1000, reason: 'done', wasClean: true, initiator: 'local' });
    wss.close();
    await once(wss, 'close');
  });

  it('masks every frame with a fresh key', async () => {

    const backend = await fakeBackend((key) =>
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`);
    const conn = await connectWebSocket(`ws://127.0.0.1:${backend.port}/`);
    conn.attach({});
    for (let i = 0; i < 5; i++) conn.send('same payload', false);
    const keys = new Set<string>();
    for (let tries = 0; tries < 200 && keys.size < 5; tries++) {
      await new Promise((r) => setTimeout(r, 5));
      const all = Buffer.concat(backend.received);
      const frames = all.subarray(all.indexOf('\r\n\r\n') + 4);
      keys.clear();
      let rest = frames;
      for (let r = parseServerFrame(rest); r; r = parseServerFrame(rest)) {
        assert.equal(r.frame.masked, true);
        assert.equal(r.frame.payload.toString(), 'same payload');
        keys.add(rest.subarray(2, 6).toString('hex'));
        rest = rest.subarray(r.size);
      }
    }
    assert.equal(keys.size, 5, 'five frames, five different keys');
    conn.terminate();
    await backend.close();
  });

  it('a response head arriving in many small reads is searched once, not re-joined per read', { timeout: 10_000 }, async () => {
    // A 12 KiB head written 64 bytes at a time, each piece its own write: the blank line straddles two writes.
    let written = 0;
    const server = net.createServer((s) => {
      s.setNoDelay(true);
      s.on('error', () => {});
      s.once('data', async (d) => {
        const key = /sec-websocket-key: *(\S+)/i.exec(d.toString('latin1'))?.[1] ?? '';
        const head = Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
          + `Sec-WebSocket-Accept: ${acceptKey(key)}\r\nX-Pad: ${'p'.repeat(12 * 1024)}\r\n\r\n\x81\x02ok`, 'latin1');
        for (let at = 0; at < head.length; at += 64) {
          await new Promise<void>((resolve) => s.write(head.subarray(at, at + 64), () => resolve()));
          await new Promise((resolve) => setImmediate(resolve));
          written = at + 64;
        }
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const original = Buffer.concat;
    let copied = 0;
    Buffer.concat = ((list: readonly Uint8Array[], length?: number) => {
      const result = original(list, length);
      copied += result.length;
      return result;
    }) as typeof Buffer.concat;
    let conn: Awaited<ReturnType<typeof connectWebSocket>> | undefined;
    try {
      conn = await connectWebSocket(`ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/`);
      Buffer.concat = original;
      const open = conn;
      const msg = await new Promise<string>((resolve) => open.attach({ onMessage: (d) => resolve(d.toString()) }));
      assert.equal(msg, 'ok', 'the frame after the head is delivered');
      assert.ok(written > 12 * 1024, 'the head went out in pieces');
      assert.ok(copied < 4 * written, `${copied} bytes copied joining a head of ${written} bytes`);
    } finally {
      Buffer.concat = original;
      conn?.terminate();
      server.close();
      await once(server, 'close');
    }
  });

  it('passes bytes that follow the 101 to the connection', async () => {
    const backend = await fakeBackend((key) =>
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n` +
      '\x81\x05early');
    const conn = await connectWebSocket(`ws://127.0.0.1:${backend.port}/`);
    const msg = await new Promise<string>((resolve) => conn.attach({ onMessage: (d) => resolve(d.toString()) }));
    assert.equal(msg, 'early');
    conn.terminate();
    await backend.close();
  });

  it('client role: after the close handshake waits for the server FIN, destroys at the close timeout', async () => {
    // A backend that answers our Close but never closes TCP.
    const backend = await fakeBackend((key) =>
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`);
    const conn = await connectWebSocket(`ws://127.0.0.1:${backend.port}/`, { connection: { closeTimeout: 150 } });
    const closed = new Promise<CloseInfo>((resolve) => conn.attach({ onClose: resolve }));
    const t0 = Date.now();
    conn.close(1000, 'bye');
    // Echo a Close from the "server" once ours arrived (unmasked, code 1000).
    for (let i = 0; i < 200 && !Buffer.concat(backend.received).includes(Buffer.from([0x88])); i++) await new Promise((r) => setTimeout(r, 5));
    backend.sockets()[0].write(Buffer.from([0x88, 0x02, 0x03, 0xe8]));
    const info = await closed;
    assert.ok(Date.now() - t0 >= 140, 'waited for the server to close TCP first');
    assert.deepEqual(info, { code: 1000, reason: '', wasClean: true, initiator: 'local' });
    await backend.close();
  });

  it('client role: a masked frame from the server → close 1002 (RFC 6455 §5.1)', async () => {
    const backend = await fakeBackend((key) =>
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n` +
      '\x81\x82\x00\x00\x00\x00hi');
    const violations: number[] = [];
    const conn = await connectWebSocket(`ws://127.0.0.1:${backend.port}/`, { connection: { onViolation: (c) => violations.push(c) } });
    const closed = new Promise<CloseInfo>((resolve) => conn.attach({ onMessage: () => assert.fail('delivered'), onClose: resolve }));
    await closed;
    assert.deepEqual(violations, [1002]);
    // Our Close to the server carried 1002, masked as every client frame.
    const all = Buffer.concat(backend.received);
    const ws = all.subarray(all.indexOf('\r\n\r\n') + 4);
    const f = parseServerFrame(ws);
    assert.equal(f?.frame.opcode, 0x8);
    assert.equal(f?.frame.masked, true);
    assert.equal(f?.frame.payload.readUInt16BE(0), 1002);
    await backend.close();
  });

  for (const [status, extra] of [[200, 'Content-Length: 0\r\n'], [302, 'Location: http://evil/\r\n'], [426, 'Sec-WebSocket-Version: 13\r\n']] as const) {
    it(`backend answering ${status} → HandshakeError 502 naming the status`, async () => {
      const backend = await fakeBackend(() => `HTTP/1.1 ${status} Whatever\r\n${extra}\r\n`);
      await assert.rejects(connectWebSocket(`ws://127.0.0.1:${backend.port}/`), (err: unknown) => {
        assert.ok(err instanceof HandshakeError);
        assert.equal(err.status, 502);
        assert.match(err.message, new RegExp(String(status)));
        return true;
      });
      await backend.close();
    });
  }

  it('101 with a wrong accept → HandshakeError 502', async () => {
    const backend = await fakeBackend(() =>
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey('AAAAAAAAAAAAAAAAAAAAAA==')}\r\n\r\n`);
    await assert.rejects(connectWebSocket(`ws://127.0.0.1:${backend.port}/`), (e: unknown) => e instanceof HandshakeError && e.status === 502 && e.reason === 'backend_bad_accept');
    await backend.close();
  });

  it('101 choosing an unoffered subprotocol → HandshakeError 502', async () => {
    const backend = await fakeBackend((key) =>
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\nSec-WebSocket-Protocol: admin\r\n\r\n`);
    await assert.rejects(connectWebSocket(`ws://127.0.0.1:${backend.port}/`, { protocols: ['chat'] }),
      (e: unknown) => e instanceof HandshakeError && e.reason === 'backend_bad_subprotocol');
    await backend.close();
  });

  it('oversized response head → HandshakeError 502', async () => {
    const backend = await fakeBackend(() => `HTTP/1.1 101 Switching Protocols\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    await assert.rejects(connectWebSocket(`ws://127.0.0.1:${backend.port}/`), (e: unknown) => e instanceof HandshakeError && e.reason === 'backend_head_too_large');
    await backend.close();
  });

  it('connection refused → BackendError 502', async () => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
    const port = (s.address() as net.AddressInfo).port;
    s.close();
    await once(s, 'close');
    await assert.rejects(connectWebSocket(`ws://127.0.0.1:${port}/`), (e: unknown) => e instanceof BackendError && e.status === 502 && e.code === 'GH_BACKEND_CONNECT');
  });

  it('backend that never answers → BackendError 504 after the timeout', async () => {
    const backend = await fakeBackend(() => null);
    await assert.rejects(connectWebSocket(`ws://127.0.0.1:${backend.port}/`, { timeout: 100 }),
      (e: unknown) => e instanceof BackendError && e.status === 504 && e.code === 'GH_BACKEND_TIMEOUT');
    await backend.close();
  });

  it('rejects non-ws URLs', async () => {
    await assert.rejects(connectWebSocket('http://127.0.0.1:1/'), (e: unknown) => e instanceof BackendError && e.code === 'GH_BACKEND_URL');
  });

  it('wss:// verifies the certificate by default; a trusted CA connects', async () => {
    // A throwaway self-signed certificate for localhost.
    const dir = mkdtempSync(join(tmpdir(), 'gh-tls-'));
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost'], { timeout: 10_000 });
    assert.equal(r.status, 0, `openssl failed: ${r.stderr?.toString()}`);
    const cert = readFileSync(join(dir, 'cert.pem'));
    const key = readFileSync(join(dir, 'key.pem'));
    rmSync(dir, { recursive: true });
    const server = https.createServer({ cert, key });
    const wss = new WebSocketServer({ server });
    wss.on('connection', (ws) => ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary })));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;

    await assert.rejects(connectWebSocket(`wss://127.0.0.1:${port}/`, { tls: { servername: 'localhost' } }),
      (e: unknown) => e instanceof BackendError && e.status === 502 && e.code === 'GH_BACKEND_TLS');

    const conn = await connectWebSocket(`wss://127.0.0.1:${port}/`, { tls: { servername: 'localhost', ca: cert } });
    const echoed = new Promise<string>((resolve) => conn.attach({ onMessage: (d) => resolve(d.toString()) }));
    conn.send('over tls', false);
    assert.equal(await echoed, 'over tls');
    const closed = new Promise<CloseInfo>((resolve) => conn.attach({ onClose: resolve }));
    conn.close(1000);
    assert.equal((await closed).wasClean, true);
    wss.close();
    server.close();
    await once(server, 'close');
  });
});
