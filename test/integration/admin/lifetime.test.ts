/**
 * max_lifetime: a connection is closed with 1001 `max lifetime` once its
 * service's lifetime (less its jitter) has passed, on both transports' shared
 * guard; a service without one keeps its connections. The jitter itself is
 * checked on the pure function that draws each connection's lifetime.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';
import { lifetimeOf } from '../../../src/admission/channel-guard.js';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';

let gw: TestGateway;
before(async () => {
  gw = await startGateway({
    services: {
      short: { path: '/short', type: 'echo', allow_missing_origin: true, max_lifetime: '1s', max_lifetime_jitter: 0.5 },
      long: { path: '/long', type: 'echo', allow_missing_origin: true },
    },
  });
});
after(async () => { await gw.stop(); });

test('a connection past its service\'s max_lifetime is closed 1001 "max lifetime"; another service\'s stays open', { timeout: 20_000 }, async () => {
  const keeper = new WebSocket(gw.url('/long'));
  await once(keeper, 'open');
  const shorts = await Promise.all([0, 1, 2].map(async () => {
    const ws = new WebSocket(gw.url('/short'));
    await once(ws, 'open');
    return ws;
  }));
  for (const [code, reason] of await Promise.all(shorts.map((ws) => once(ws, 'close')))) {
    assert.equal(code, 1001);
    assert.equal(String(reason), 'max lifetime');
  }
  assert.equal(keeper.readyState, WebSocket.OPEN, 'a service without max_lifetime keeps its connection');
  keeper.send('still here');
  const [echo] = await once(keeper, 'message');
  assert.equal(String(echo), 'still here');
  keeper.close();
  await once(keeper, 'close');
  assert.equal(gw.gateway.metrics.get('gatehouse_closes_total', { service: 'short', code: '1001', closed_by: 'gateway' }), 3);
});

test('each connection\'s lifetime is drawn within the last jitter fraction of max_lifetime', () => {
  assert.equal(lifetimeOf(60_000, 0.1, 0), 60_000, 'u = 0: the whole lifetime');
  assert.equal(lifetimeOf(60_000, 0.1, 0.5), 57_000);
  assert.equal(lifetimeOf(60_000, 0.1, 0.999999), 54_000, 'u → 1: shortened by the whole jitter');
  assert.equal(lifetimeOf(60_000, 0, 0.7), 60_000, 'no jitter: all the same');
  const drawn = Array.from({ length: 1000 }, () => lifetimeOf(10_000, 0.2, Math.random()));
  assert.ok(drawn.every((t) => t >= 8_000 && t <= 10_000), 'within [max × (1 − jitter), max]');
  assert.ok(new Set(drawn).size > 100, 'spread, not one value');
});
