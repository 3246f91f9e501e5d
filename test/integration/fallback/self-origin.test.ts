/**
 * A service that lists `self` (the built-in default's echo does, for its demo
 * page) admits pages the gateway serves itself — on the fallback's every
 * request exactly as on the WebSocket upgrade — and nothing else.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { WebSocket as NodeWebSocket } from 'ws';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { EVIL, RawSession, openSession } from './raw.js';
import { FrameType } from '../../../src/fallback/wire.js';

let gw: TestGateway;
let self: string;
before(async () => {
  gw = await startGateway({ services: { echo: { path: '/echo', type: 'echo', origins: ['self'] } } });
  self = `http://127.0.0.1:${gw.port}`;
});
after(async () => { await gw.stop(); });

test('the gateway\'s own origin opens a fallback session, sends and receives', async () => {
  const headers = { Origin: self, 'Content-Type': 'application/octet-stream' };
  const { res, sid } = await openSession(gw.httpUrl('/echo'), { Origin: self });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('access-control-allow-origin'), self);
  const session = new RawSession(gw.httpUrl('/echo'), sid as string, headers);
  const sent = await session.send(['hello self']);
  assert.equal(sent.status, 200);
  await sent.arrayBuffer();
  const [msg] = await session.receive(1);
  assert.ok(msg.type === FrameType.TEXT, `a text message, got frame type ${msg.type}`);
  assert.equal(msg.payload.toString(), 'hello self');
  // The same session presented from another origin is refused.
  const foreign = await session.send(['x'], { ...headers, Origin: EVIL });
  assert.equal(foreign.status, 403);
  await foreign.arrayBuffer();
});

test('the gateway\'s own origin opens a WebSocket; a foreign one is refused on both transports', async () => {
  const ws = new NodeWebSocket(gw.url('/echo'), { origin: self });
  await once(ws, 'open');
  ws.close();
  await once(ws, 'close');
  const { res } = await openSession(gw.httpUrl('/echo'), { Origin: EVIL });
  assert.equal(res.status, 403);
  const refused = new NodeWebSocket(gw.url('/echo'), { origin: EVIL });
  refused.on('error', () => { /* terminated after the refusal */ });
  const [, response] = await once(refused, 'unexpected-response');
  assert.equal(response.statusCode, 403);
  response.resume();
  refused.terminate();
});
