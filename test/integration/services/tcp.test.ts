/**
 * The `tcp` service end to end: independent clients (`ws`, `mqtt`) through a
 * real gateway to real TCP backends (Mosquitto, scripted sockets, TLS).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { WebSocket } from 'ws';
import { startGateway } from '../../helpers/gateway.js';
import { NON_BROWSER, TEST_LIMITS } from './helpers/config.js';
import { echoSocket, startRawBackend, type RawBackend } from './helpers/backends.js';
import { closedOf, nextMessage, openClient, refusedStatus, roundTrip } from './helpers/clients.js';
import { makeTestPki, type TestPki } from './helpers/certs.js';
import { freePort } from './helpers/processes.js';
import { startMosquitto, type Mosquitto } from '../../helpers/mosquitto.js';

type Gw = Awaited<ReturnType<typeof startGateway>>;

/** Reads `n` bytes from a backend socket. */
function readBytes(socket: import('node:net').Socket, n: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let got = 0;
    const onData = (c: Buffer): void => {
      parts.push(c);
      got += c.length;
      if (got >= n) {
        socket.removeListener('data', onData);
        resolve(Buffer.concat(parts));
      }
    };
    socket.on('data', onData);
  });
}

/** Collects binary messages until `n` bytes have arrived. */
function collect(ws: WebSocket, n: number): Promise<Buffer[]> {
  return new Promise((resolve) => {
    const msgs: Buffer[] = [];
    let got = 0;
    const onMsg = (d: Buffer, isBinary: boolean): void => {
      assert.equal(isBinary, true, 'backend bytes arrive as binary messages');
      msgs.push(d);
      got += d.length;
      if (got >= n) {
        ws.removeListener('message', onMsg);
        resolve(msgs);
      }
    };
    ws.on('message', onMsg);
  });
}

async function assertCanary(gw: Gw): Promise<void> {
  const canary = await openClient(gw.url('/echo-tcp'));
  const reply = await roundTrip(canary, Buffer.from('canary'));
  assert.equal(reply.data.toString(), 'canary');
  canary.close();
}

describe('tcp service', () => {
  let mosquitto: Mosquitto;
  let echo: RawBackend;
  let scripted: RawBackend;
  let stalling: RawBackend;
  let tlsBackend: RawBackend;
  let pki: TestPki;
  let gw: Gw;
  let closedPort: number;

  before(async () => {
    pki = makeTestPki();
    mosquitto = await startMosquitto();
    echo = await startRawBackend(echoSocket);
    scripted = await startRawBackend();
    stalling = await startRawBackend(); // accepts TCP, never speaks TLS
    tlsBackend = await startRawBackend(echoSocket, { cert: pki.serverCert, key: pki.serverKey });
    closedPort = await freePort();
    gw = await startGateway({
      listen: [{ host: '127.0.0.1', port: 0 }],
      limits: TEST_LIMITS,
      services: {
        mqtt: { path: '/mqtt', type: 'tcp', ...NON_BROWSER, backend: `tcp://127.0.0.1:${mosquitto.port}` },
        'echo-tcp': { path: '/echo-tcp', type: 'tcp', ...NON_BROWSER, backend: `tcp://127.0.0.1:${echo.port}` },
        'echo-text': { path: '/echo-text', type: 'tcp', ...NON_BROWSER, backend: `tcp://127.0.0.1:${echo.port}`, text: 'pass' },
        scripted: { path: '/scripted', type: 'tcp', ...NON_BROWSER, backend: `tcp://127.0.0.1:${scripted.port}`, frame_size: '16KiB' },
        refused: { path: '/refused', type: 'tcp', ...NON_BROWSER, backend: `tcp://127.0.0.1:${closedPort}` },
        stalled: { path: '/stalled', type: 'tcp', ...NON_BROWSER, backend: `tls://127.0.0.1:${stalling.port}`, connect_timeout: '300ms', tls: { ca: pki.caFile } },
        tls: { path: '/tls', type: 'tcp', ...NON_BROWSER, backend: `tls://127.0.0.1:${tlsBackend.port}`, tls: { ca: pki.caFile } },
        'tls-untrusted': { path: '/tls-untrusted', type: 'tcp', ...NON_BROWSER, backend: `tls://127.0.0.1:${tlsBackend.port}` },
      },
    });
  });

  after(async () => {
    await gw?.stop();
    await Promise.all([mosquitto?.stop(), echo?.close(), scripted?.close(), stalling?.close(), tlsBackend?.close()]);
    pki?.cleanup();
  });

  it('carries MQTT publish and subscribe to Mosquitto (mqtt npm client over WebSocket)', async () => {
    const connect = (clientId: string) => mqtt.connectAsync(gw.url('/mqtt'), {
      clientId,
      reconnectPeriod: 0,
      connectTimeout: 5_000,
      // The gateway's tcp service does not negotiate subprotocols itself (admission does,
      // when the service lists `mqtt`); open the socket without an offer here.
      createWebsocket: (url: string) => new WebSocket(url) as never,
    });
    const sub = await connect('sub-1');
    const pub = await connect('pub-1');
    try {
      await sub.subscribeAsync('gatehouse/test', { qos: 1 });
      const received = new Promise<[string, Buffer]>((resolve) => sub.once('message', (t, p) => resolve([t, p])));
      await pub.publishAsync('gatehouse/test', 'hello through the gate', { qos: 1 });
      const [topic, payload] = await received;
      assert.equal(topic, 'gatehouse/test');
      assert.equal(payload.toString(), 'hello through the gate');
    } finally {
      await Promise.all([sub.endAsync(), pub.endAsync()]);
    }
  });

  it('turns binary messages into bytes and backend bytes into binary messages, in order', async () => {
    const ws = await openClient(gw.url('/echo-tcp'));
    const parts = [Buffer.from('one,'), Buffer.from('two,'), Buffer.alloc(100_000, 7), Buffer.from('three')];
    const expected = Buffer.concat(parts);
    const got = collect(ws, expected.length);
    for (const p of parts) ws.send(p, { binary: true });
    assert.deepEqual(Buffer.concat(await got), expected);
    ws.close();
  });

  it('coalesces backend bytes into messages of at most frame_size', async () => {
    const pending = scripted.nextSocket();
    const ws = await openClient(gw.url('/scripted'));
    const backend = await pending;
    const payload = Buffer.alloc(200_000);
    for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
    const got = collect(ws, payload.length);
    backend.write(payload);
    const msgs = await got;
    assert.ok(msgs.every((m) => m.length <= 16 * 1024), 'no message over frame_size');
    assert.ok(msgs.length >= Math.ceil(payload.length / (16 * 1024)));
    assert.deepEqual(Buffer.concat(msgs), payload);
    ws.close();
  });

  it('refuses a text message with 1003 by default, audited, others unaffected', async () => {
    const before = gw.gateway.metrics.get('gatehouse_violations_total', { reason: 'text_not_allowed' });
    const ws = await openClient(gw.url('/echo-tcp'));
    const closed = closedOf(ws);
    ws.send('some text');
    assert.equal((await closed).code, 1003);
    assert.equal(gw.gateway.metrics.get('gatehouse_violations_total', { reason: 'text_not_allowed' }), before + 1);
    assert.ok(gw.auditReasons().includes('text_not_allowed'), 'audited with its reason');
    await assertCanary(gw);
  });

  it('passes a text message as its UTF-8 bytes when text: pass', async () => {
    const ws = await openClient(gw.url('/echo-text'));
    const reply = await roundTrip(ws, 'grüße');
    assert.equal(reply.isBinary, true);
    assert.deepEqual(reply.data, Buffer.from('grüße', 'utf8'));
    ws.close();
  });

  it('closes the client with 1000 after the backend FIN, data first', async () => {
    const pending = scripted.nextSocket();
    const ws = await openClient(gw.url('/scripted'));
    const backend = await pending;
    const msg = nextMessage(ws);
    const closed = closedOf(ws);
    backend.end('last words');
    assert.equal((await msg).data.toString(), 'last words');
    assert.equal((await closed).code, 1000);
  });

  it('closes the client with 1014 when the backend resets mid-stream', async () => {
    const pending = scripted.nextSocket();
    const ws = await openClient(gw.url('/scripted'));
    const backend = await pending;
    const msg = nextMessage(ws);
    backend.write('some bytes');
    await msg;
    const before = gw.gateway.metrics.get('gatehouse_backend_failures_total', { service: 'scripted', code: 'GH_BACKEND_LOST' });
    const closed = closedOf(ws);
    backend.resetAndDestroy();
    assert.equal((await closed).code, 1014);
    assert.equal(gw.gateway.metrics.get('gatehouse_backend_failures_total', { service: 'scripted', code: 'GH_BACKEND_LOST' }), before + 1);
    await assertCanary(gw);
  });

  it('closes the backend socket at once when the client goes away', async () => {
    const pending = scripted.nextSocket();
    const ws = await openClient(gw.url('/scripted'));
    const backend = await pending;
    const backendClosed = new Promise((resolve) => backend.once('close', resolve));
    ws.terminate();
    await backendClosed;
    await assertCanary(gw);
  });

  it('sends the backend a clean FIN when the client closes normally', async () => {
    const pending = scripted.nextSocket();
    const ws = await openClient(gw.url('/scripted'));
    const backend = await pending;
    const got = readBytes(backend, 5);
    ws.send(Buffer.from('hello'));
    assert.equal((await got).toString(), 'hello');
    const ended = once(backend, 'end');
    ws.close(1000);
    await ended;
    backend.end();
  });

  it('a backend paused by backpressure still gets its FIN read when the client closes (no 5 s wait)', { timeout: 20_000 }, async () => {
    const service = gw.gateway.front.context.services.get('scripted') as unknown as { liveConnections: number };
    const pending = scripted.nextSocket();
    const ws = await openClient(gw.url('/scripted'));
    const backend = await pending;
    const backendErrors: string[] = [];
    backend.on('error', (err: NodeJS.ErrnoException) => { backendErrors.push(err.code ?? err.message); });
    // The client stops reading; the backend floods until the relay pauses it (its writes stop draining).
    const clientSocket = (ws as unknown as { _socket: import('node:net').Socket })._socket;
    clientSocket.pause();
    const chunk = Buffer.alloc(64 * 1024, 9);
    while (backend.write(chunk)) { /* fill */ }
    await new Promise((resolve) => setImmediate(resolve));
    for (let i = 0; i < 64 && backend.writableNeedDrain; i++) backend.write(chunk);
    const ended = once(backend, 'end');
    ws.close(1000);
    clientSocket.resume(); // the client finishes its close handshake; the backend stays paused behind its unread bytes
    await ended;
    const backendClosed = new Promise((resolve) => backend.once('close', resolve));
    backend.end();
    // The link reads on to the backend's FIN and closes cleanly. A link left paused waits out its 5 s timer and
    // then destroys a socket holding unread bytes, which resets the backend's connection: no clock needed to tell.
    await backendClosed;
    assert.deepEqual(backendErrors, [], 'the backend saw a clean close, not a reset after the close timer');
    for (let i = 0; i < 250 && service.liveConnections > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(service.liveConnections, 0, 'the relay ended');
    ws.terminate();
  });

  it('a backend that stops reading is dropped after send_stall_timeout, and its paused client gets 1014', { timeout: 30_000 }, async () => {
    const stuckGw = await startGateway({
      listen: [{ host: '127.0.0.1', port: 0 }],
      limits: { ...TEST_LIMITS, send_stall_timeout: '500ms' },
      services: { stuck: { path: '/stuck', type: 'tcp', ...NON_BROWSER, backend: `tcp://127.0.0.1:${scripted.port}` } },
    });
    try {
      const pending = scripted.nextSocket();
      const ws = await openClient(stuckGw.url('/stuck'));
      const backend = await pending;
      backend.on('error', () => {});
      backend.pause(); // reads nothing from now on
      const closed = closedOf(ws);
      const chunk = Buffer.alloc(64 * 1024, 5);
      // Enough to fill the backend's socket buffers, so that the relay pauses the client.
      for (let i = 0; i < 256; i++) ws.send(chunk);
      const { code } = await closed;
      assert.equal(code, 1014, 'the client is told the backend failed');
      const stuck = stuckGw.gateway.front.context.services.get('stuck') as unknown as { liveConnections: number };
      for (let i = 0; i < 100 && stuck.liveConnections > 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(stuck.liveConnections, 0, 'the backend link is gone');
      await assertCanary(gw);
    } finally {
      await stuckGw.stop();
    }
  });

  it('answers 502 when the backend refuses the connection, others unaffected', async () => {
    const before = gw.gateway.metrics.get('gatehouse_backend_failures_total', { service: 'refused', code: 'GH_BACKEND_UNREACHABLE' });
    assert.equal(await refusedStatus(gw.url('/refused')), 502);
    assert.equal(gw.gateway.metrics.get('gatehouse_backend_failures_total', { service: 'refused', code: 'GH_BACKEND_UNREACHABLE' }), before + 1);
    assert.ok(gw.auditReasons().includes('gh_backend_unreachable'), 'audited with its reason');
    await assertCanary(gw);
  });

  it('answers 504 when the backend does not complete the connection within connect_timeout', async () => {
    assert.equal(await refusedStatus(gw.url('/stalled')), 504);
    assert.equal(gw.gateway.metrics.get('gatehouse_backend_failures_total', { service: 'stalled', code: 'GH_BACKEND_TIMEOUT' }), 1);
    assert.ok(gw.auditReasons().includes('gh_backend_timeout'), 'audited with its reason');
    await assertCanary(gw);
  });

  it('reaches a TLS backend whose certificate the configured CA verifies', async () => {
    const ws = await openClient(gw.url('/tls'));
    const reply = await roundTrip(ws, Buffer.from('over tls'));
    assert.equal(reply.data.toString(), 'over tls');
    ws.close();
  });

  it('answers 502 when the TLS backend certificate is not trusted (never falls back to unverified)', async () => {
    assert.equal(await refusedStatus(gw.url('/tls-untrusted')), 502);
    assert.equal(gw.gateway.metrics.get('gatehouse_backend_failures_total', { service: 'tls-untrusted', code: 'GH_BACKEND_TLS' }), 1);
    assert.ok(gw.auditReasons().includes('gh_backend_tls'), 'audited with its reason');
    await assertCanary(gw);
  });
});
