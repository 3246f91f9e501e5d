/**
 * The `websocket` service end to end: a `ws` client through a real gateway to
 * real backends — a `ws` server over plain and verified TLS (with and without a
 * client certificate) — and to scripted sockets that misbehave.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Admission, AdmissionRequest } from '../../../src/admission/types.js';
import { parseConfig, servicesOf } from '../../../src/config/load.js';
import { WebSocketService, type WebSocketServiceConfig } from '../../../src/services/websocket.js';
import { startGateway } from '../../helpers/gateway.js';
import { NON_BROWSER, TEST_LIMITS } from './helpers/config.js';
import {
  readUpgradeKey, serverFrame, startRawBackend, startWsBackend, switchingProtocols, type RawBackend, type WsBackend,
} from './helpers/backends.js';
import { closedOf, nextMessage, openClient, refusedStatus, roundTrip } from './helpers/clients.js';
import { makeTestPki, type TestPki } from './helpers/certs.js';
import { freePort } from './helpers/processes.js';
import { RawClient } from '../../helpers/raw-client.js';

type Gw = Awaited<ReturnType<typeof startGateway>>;

/** Reads one masked client→server frame from a raw backend socket (small frames only). */
function readClientFrame(socket: net.Socket): Promise<{ opcode: number; fin: boolean; payload: Buffer }> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      if (buf.length < 2) return;
      const len = buf[1] & 0x7f;
      if (len >= 126 || buf.length < 6 + len) return;
      socket.removeListener('data', onData);
      const key = buf.subarray(2, 6);
      const payload = Buffer.from(buf.subarray(6, 6 + len));
      for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
      resolve({ opcode: buf[0] & 0x0f, fin: (buf[0] & 0x80) !== 0, payload });
    };
    socket.on('data', onData);
  });
}

describe('websocket service', () => {
  let pki: TestPki;
  let plain: WsBackend;
  let secure: WsBackend;
  let mutual: WsBackend;
  let picky: WsBackend;
  let raw: RawBackend;
  let gw: Gw;
  let closedPort: number;
  /** What the raw backend does with the next connection. */
  let script: (socket: net.Socket) => void = () => {};

  before(async () => {
    pki = makeTestPki();
    plain = await startWsBackend();
    secure = await startWsBackend({ tls: { cert: pki.serverCert, key: pki.serverKey } });
    mutual = await startWsBackend({ tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, requestCert: true } });
    picky = await startWsBackend({ handleProtocols: (offered) => (offered.has('chat.v2') ? 'chat.v2' : false) });
    raw = await startRawBackend((s) => script(s));
    closedPort = await freePort();
    const tls = { ca: pki.caFile };
    gw = await startGateway({
      listen: [{ host: '127.0.0.1', port: 0 }],
      limits: TEST_LIMITS,
      services: {
        plain: { path: '/plain', type: 'websocket', ...NON_BROWSER, backend: plain.url, max_message: '8MiB' },
        secure: { path: '/secure', type: 'websocket', ...NON_BROWSER, backend: secure.url, tls },
        untrusted: { path: '/untrusted', type: 'websocket', ...NON_BROWSER, backend: secure.url },
        mutual: { path: '/mutual', type: 'websocket', ...NON_BROWSER, backend: mutual.url, tls: { ...tls, cert: pki.clientCertFile, key: pki.clientKeyFile } },
        'mutual-nocert': { path: '/mutual-nocert', type: 'websocket', ...NON_BROWSER, backend: mutual.url, tls },
        picky: { path: '/picky', type: 'websocket', ...NON_BROWSER, backend: picky.url, backend_protocols: ['chat.v2', 'chat.v1'] },
        raw: { path: '/raw', type: 'websocket', ...NON_BROWSER, backend: `ws://127.0.0.1:${raw.port}/` },
        silent: { path: '/silent', type: 'websocket', ...NON_BROWSER, backend: `ws://127.0.0.1:${raw.port}/`, connect_timeout: '300ms' },
        refused: { path: '/refused', type: 'websocket', ...NON_BROWSER, backend: `ws://127.0.0.1:${closedPort}/` },
      },
    });
  });

  after(async () => {
    await gw?.stop();
    await Promise.all([plain?.close(), secure?.close(), mutual?.close(), picky?.close(), raw?.close()]);
    pki?.cleanup();
  });

  async function assertCanary(): Promise<void> {
    const canary = await openClient(gw.url('/plain'));
    assert.equal((await roundTrip(canary, 'canary')).data.toString(), 'canary');
    canary.close();
  }

  it('relays text and binary messages both ways over plain ws', async () => {
    const ws = await openClient(gw.url('/plain'));
    const text = await roundTrip(ws, 'héllo');
    assert.equal(text.isBinary, false);
    assert.equal(text.data.toString(), 'héllo');
    const bin = await roundTrip(ws, Buffer.from([0, 1, 2, 255]));
    assert.equal(bin.isBinary, true);
    assert.deepEqual(bin.data, Buffer.from([0, 1, 2, 255]));
    ws.close();
  });

  it('relays a large message and a fragmented message intact', async () => {
    const ws = await openClient(gw.url('/plain'));
    const big = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big[i] = (i >> 12) & 0xff;
    assert.deepEqual((await roundTrip(ws, big)).data, big);
    const reply = nextMessage(ws);
    ws.send('frag-', { fin: false });
    ws.send('ment-', { fin: false });
    ws.send('ed', { fin: true });
    const r = await reply;
    assert.equal(r.isBinary, false);
    assert.equal(r.data.toString(), 'frag-ment-ed');
    ws.close();
  });

  it('passthrough (raw frame path): masked client frames chopped into any pieces reach the backend intact', async () => {
    // The client's binary payload crosses still masked and is re-masked for the
    // backend in one pass; text is unmasked (UTF-8 checked) and masked again.
    const bin = Buffer.from(Array.from({ length: 3001 }, (_, i) => (i * 7 + 5) & 0xff));
    const frames = [
      { opcode: 0x2, payload: bin.subarray(0, 5), fin: false },
      { opcode: 0x9, payload: 'ping' },
      { opcode: 0x0, payload: bin.subarray(5, 1030), fin: false },
      { opcode: 0x0, payload: Buffer.alloc(0), fin: false },
      { opcode: 0x0, payload: bin.subarray(1030), fin: true },
      { opcode: 0x1, payload: 'héllo, wörld' },
      { opcode: 0x2, payload: bin.subarray(0, 127) },
    ];
    const expected = [bin, Buffer.from('héllo, wörld'), bin.subarray(0, 127)];
    for (const chop of [1, 3, 7, 1000]) {
      const raw = await RawClient.connect({ port: gw.port });
      assert.equal((await raw.upgrade('/plain')).status, 101);
      const wire = Buffer.concat(frames.map((f) => raw.frame(f)));
      // Small chops for the first frames only: a byte per write for 3 KiB is slow.
      await raw.write(wire.subarray(0, 64), { chop });
      await raw.write(wire.subarray(64), { chop: chop * 41 });
      const got: Buffer[] = [];
      let parts: Buffer[] = [];
      while (got.length < expected.length) {
        const f = await raw.readFrame(5000);
        if (f.opcode === 0xa) continue; // the gateway's pong
        parts.push(f.payload);
        if (f.fin) {
          got.push(Buffer.concat(parts));
          parts = [];
        }
      }
      for (const [i, e] of expected.entries()) assert.ok(got[i].equals(e), `chop ${chop}: message ${i}`);
      raw.destroy();
    }
  });

  it('relays each fragment as it arrives, never waiting for the whole message', async () => {
    let backendSocket!: net.Socket;
    script = (s) => {
      backendSocket = s;
      readUpgradeKey(s).then((key) => s.write(switchingProtocols(key)), () => {});
    };
    const ws = await openClient(gw.url('/raw'));
    const firstFrame = readClientFrame(backendSocket);
    ws.send('first half, ', { fin: false });
    // The message is still open on the client side: the backend already has its first piece.
    const f1 = await firstFrame;
    assert.equal(f1.opcode, 0x1);
    assert.equal(f1.fin, false);
    assert.equal(f1.payload.toString(), 'first half, ');
    const lastFrame = readClientFrame(backendSocket);
    ws.send('second half', { fin: true });
    const f2 = await lastFrame;
    assert.equal(f2.opcode, 0x0, 'a continuation frame');
    assert.equal(f2.fin, true);
    assert.equal(f2.payload.toString(), 'second half');
    ws.terminate();
  });

  it('answers pings on each hop and never relays them', async () => {
    const pending = plain.nextConnection();
    const ws = await openClient(gw.url('/plain'));
    const { ws: backendSide } = await pending;
    let clientSawPing = false;
    let backendSawPing = false;
    ws.on('ping', () => { clientSawPing = true; });
    backendSide.on('ping', () => { backendSawPing = true; });
    const backendPong = once(backendSide, 'pong');
    backendSide.ping(Buffer.from('from backend'));
    assert.equal(String((await backendPong)[0]), 'from backend', 'the gateway answered the backend');
    const clientPong = once(ws, 'pong');
    ws.ping(Buffer.from('from client'));
    assert.equal(String((await clientPong)[0]), 'from client', 'the gateway answered the client');
    // A message after the pings has crossed the same sockets: a relayed ping would have arrived first.
    assert.equal((await roundTrip(ws, 'after')).data.toString(), 'after');
    assert.equal(clientSawPing, false);
    assert.equal(backendSawPing, false);
    ws.close();
  });

  it('carries close codes from the client to the backend', async () => {
    const pending = plain.nextConnection();
    const ws = await openClient(gw.url('/plain'));
    const { ws: backendSide } = await pending;
    const backendClosed = once(backendSide, 'close');
    ws.close(4001, 'client bye');
    const [code, reason] = await backendClosed as [number, Buffer];
    assert.equal(code, 4001);
    assert.equal(reason.toString(), 'client bye');
  });

  it('carries close codes from the backend to the client (no code → 1000)', async () => {
    const pending = plain.nextConnection();
    const ws = await openClient(gw.url('/plain'));
    const { ws: backendSide } = await pending;
    const closed = closedOf(ws);
    backendSide.close(4002, 'backend bye');
    assert.deepEqual(await closed, { code: 4002, reason: 'backend bye' });

    const pending2 = plain.nextConnection();
    const ws2 = await openClient(gw.url('/plain'));
    const { ws: backendSide2 } = await pending2;
    const closed2 = closedOf(ws2);
    backendSide2.close();
    assert.equal((await closed2).code, 1000);
  });

  it('closes the client with 1014 when the backend is killed mid-stream', async () => {
    const pending = plain.nextConnection();
    const ws = await openClient(gw.url('/plain'));
    const { ws: backendSide } = await pending;
    const msg = nextMessage(ws);
    backendSide.send('before the crash');
    assert.equal((await msg).data.toString(), 'before the crash');
    const before = gw.gateway.metrics.get('gatehouse_backend_failures_total', { service: 'plain', code: 'GH_BACKEND_LOST' });
    const closed = closedOf(ws);
    backendSide.terminate();
    assert.equal((await closed).code, 1014);
    assert.equal(gw.gateway.metrics.get('gatehouse_backend_failures_total', { service: 'plain', code: 'GH_BACKEND_LOST' }), before + 1);
    await assertCanary();
  });

  it('closes the backend with 1001 when the client vanishes', async () => {
    const pending = plain.nextConnection();
    const ws = await openClient(gw.url('/plain'));
    const { ws: backendSide } = await pending;
    const backendClosed = once(backendSide, 'close');
    ws.terminate();
    const [code] = await backendClosed as [number];
    assert.equal(code, 1001, 'the backend is told the client went away');
  });

  it('reaches a wss backend verified by the configured CA', async () => {
    const ws = await openClient(gw.url('/secure'));
    assert.equal((await roundTrip(ws, 'over tls')).data.toString(), 'over tls');
    ws.close();
  });

  it('presents the configured client certificate to a backend that requires one', async () => {
    const pending = mutual.nextConnection();
    const ws = await openClient(gw.url('/mutual'));
    const { req } = await pending;
    const cert = (req.socket as import('node:tls').TLSSocket).getPeerCertificate();
    assert.equal(cert.subject.CN, 'gatehouse');
    assert.equal((await roundTrip(ws, 'mtls')).data.toString(), 'mtls');
    ws.close();
  });

  it('answers 502 when the backend certificate is untrusted or the backend wants a client certificate', async () => {
    assert.equal(await refusedStatus(gw.url('/untrusted')), 502);
    assert.ok(gw.auditReasons().includes('gh_backend_tls'));
    assert.equal(await refusedStatus(gw.url('/mutual-nocert')), 502);
    await assertCanary();
  });

  it('offers the backend only the allowed subprotocols and returns its choice', async () => {
    // Driven at the service: the client's offer reaches `admission.offeredProtocols`
    // through the admission pipeline's subprotocol parsing (issue 3).
    const config = parseConfig({ services: { picky: { path: '/p', type: 'websocket', ...NON_BROWSER, backend: picky.url, backend_protocols: ['chat.v2', 'chat.v1'] } } });
    const svcConfig = servicesOf(config)[0] as WebSocketServiceConfig;
    const g = gw.gateway;
    const service = new WebSocketService(svcConfig, { log: g.log, audit: g.audit, metrics: g.metrics, websocket: config.websocket });
    const admission: Admission = {
      id: 'test-1', service: svcConfig, client: { address: '127.0.0.1', port: 1 }, origin: null, protocol: '',
      offeredProtocols: ['chat.v1', 'other', 'chat.v2'], request: {} as AdmissionRequest, release: () => {},
    };
    const pending = picky.nextConnection();
    const session = await service.open(admission);
    const { req, ws: backendSide } = await pending;
    assert.equal(req.headers['sec-websocket-protocol'], 'chat.v1, chat.v2');
    assert.equal(session.protocol, 'chat.v2');
    const backendClosed = once(backendSide, 'close');
    session.abort();
    assert.equal((await backendClosed)[0], 1001);
  });

  it('carries no subprotocol in the 101 when the client offered none', async () => {
    const pending = picky.nextConnection();
    const ws = await openClient(gw.url('/picky'));
    await pending;
    // Without an offer the backend picks nothing and the client's 101 carries nothing.
    assert.equal(ws.protocol, '');
    ws.close();
  });

  for (const [status, extra] of [[200, 'Content-Length: 2\r\n\r\nhi'], [302, 'Location: http://127.0.0.1/\r\nContent-Length: 0\r\n\r\n']] as const) {
    it(`answers 502 when the backend answers ${status} instead of 101, never tunnelling`, async () => {
      const before = gw.gateway.metrics.get('gatehouse_backend_failures_total', { service: 'raw', code: 'GH_BACKEND_STATUS' });
      let tunnelled = false;
      script = (s) => {
        readUpgradeKey(s).then(() => {
          s.write(`HTTP/1.1 ${status} Whatever\r\n${extra}`);
          s.on('data', () => { tunnelled = true; });
        }, () => {});
      };
      assert.equal(await refusedStatus(gw.url('/raw')), 502);
      assert.equal(gw.gateway.metrics.get('gatehouse_backend_failures_total', { service: 'raw', code: 'GH_BACKEND_STATUS' }), before + 1);
      assert.ok(gw.auditReasons().includes('gh_backend_status'), 'audited with its reason');
      assert.equal(tunnelled, false, 'no byte reaches the backend after its refusal');
      await assertCanary();
    });
  }

  it('answers 502 to garbage, a wrong Accept or a reset, and 504 to a backend that never answers', async () => {
    script = (s) => { readUpgradeKey(s).then(() => s.write('SSH-2.0-OpenSSH_9.6\r\n\r\n'), () => {}); };
    assert.equal(await refusedStatus(gw.url('/raw')), 502);
    assert.ok(gw.auditReasons().includes('gh_backend_bad_response'));
    script = (s) => { readUpgradeKey(s).then(() => s.write(switchingProtocols('AAAAAAAAAAAAAAAAAAAAAA==')), () => {}); };
    assert.equal(await refusedStatus(gw.url('/raw')), 502, 'a 101 with the wrong Sec-WebSocket-Accept');
    assert.ok(gw.auditReasons().includes('gh_backend_bad_accept'));
    script = (s) => { readUpgradeKey(s).then(() => s.resetAndDestroy(), () => {}); };
    assert.equal(await refusedStatus(gw.url('/raw')), 502, 'a reset during the handshake');
    script = () => {}; // accepts TCP, reads, never answers
    assert.equal(await refusedStatus(gw.url('/silent')), 504);
    assert.ok(gw.auditReasons().includes('gh_backend_timeout'));
    await assertCanary();
  });

  it('answers 502 when the backend refuses the connection', async () => {
    assert.equal(await refusedStatus(gw.url('/refused')), 502);
    assert.ok(gw.auditReasons().includes('gh_backend_connect'));
    await assertCanary();
  });

  for (const [name, frame, backendCode, reason] of [
    ['a masked frame', serverFrame(0x2, Buffer.from('masked'), { mask: true }), 1002, 'backend_protocol_error'],
    ['invalid UTF-8 in a text frame', serverFrame(0x1, Buffer.from([0x68, 0xc3, 0x28])), 1007, 'backend_protocol_error'],
    ['a frame with RSV1 set (no extension agreed)', Buffer.concat([Buffer.from([0xc2, 0x02]), Buffer.from('hi')]), 1002, 'backend_protocol_error'],
    ['a frame declaring 32 MiB (over max_message)', Buffer.from([0x82, 127, 0, 0, 0, 0, 0x02, 0, 0, 0]), 1009, 'backend_message_too_big'],
    ['a Close frame with code 1005', serverFrame(0x8, Buffer.from([0x03, 0xed])), 1002, 'backend_protocol_error'],
  ] as const) {
    it(`closes the client with 1014 when the backend sends ${name}, never relaying it (audited ${reason})`, async () => {
      const before = gw.gateway.metrics.get('gatehouse_violations_total', { reason });
      let backendSocket!: net.Socket;
      script = (s) => {
        backendSocket = s;
        readUpgradeKey(s).then((key) => s.write(switchingProtocols(key)), () => {});
      };
      const ws = await openClient(gw.url('/raw'));
      let relayed = false;
      ws.on('message', () => { relayed = true; });
      const closed = closedOf(ws);
      const closeFrame = readClientFrame(backendSocket);
      backendSocket.write(frame);
      assert.equal((await closed).code, 1014);
      const f = await closeFrame;
      assert.equal(f.opcode, 0x8);
      assert.equal(f.payload.readUInt16BE(0), backendCode);
      assert.equal(relayed, false);
      assert.equal(gw.gateway.metrics.get('gatehouse_violations_total', { reason }), before + 1, `counted as ${reason}`);
      await assertCanary();
    });
  }
});
