/**
 * limits.exempt_addresses, and the built-in default that uses it: local tools
 * making many handshakes from 127.0.0.1 are not refused with 429 on `gatehouse
 * start` without a config, while a configuration that does not exempt an
 * address keeps its per-address limits (and the 429 names the key).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';
import { loadDefaultConfig } from '../../../src/config/load.js';
import { Gateway } from '../../../src/gateway.js';
import { createLogger } from '../../../src/observe/log.js';
import { startGateway } from '../../helpers/gateway.js';

/** Opens `n` connections 20 at a time; returns how many opened and the statuses of the refused. */
async function burst(url: string, n: number): Promise<{ opened: number; refused: number[] }> {
  const sockets: WebSocket[] = [];
  const refused: number[] = [];
  for (let i = 0; i < n; i += 20) {
    await Promise.all(Array.from({ length: Math.min(20, n - i) }, async () => {
      const ws = new WebSocket(url);
      ws.on('error', (err) => { const m = /Unexpected server response: (\d+)/.exec(err.message); if (m) refused.push(Number(m[1])); });
      const opened = await new Promise<boolean>((resolve) => { ws.once('open', () => resolve(true)); ws.once('close', () => resolve(false)); });
      if (opened) sockets.push(ws);
    }));
  }
  const opened = sockets.length;
  await Promise.all(sockets.map(async (ws) => { ws.close(); await once(ws, 'close'); }));
  return { opened, refused };
}

test('the built-in default exempts loopback: 150 quick handshakes from 127.0.0.1 all open', { timeout: 30_000 }, async () => {
  const gw = await Gateway.start(loadDefaultConfig({ GATEHOUSE_PORT: '0', GATEHOUSE_ADMIN_PORT: '0' }), { logger: createLogger('silent') });
  try {
    const r = await burst(`ws://127.0.0.1:${gw.addresses[0].port}/echo`, 150);
    assert.deepEqual(r, { opened: 150, refused: [] });
  } finally {
    await gw.stop(0);
  }
});

test('without the exemption the same burst meets limits.handshake_burst, and the 429 names the key', { timeout: 30_000 }, async () => {
  const gw = await startGateway({
    limits: { handshake_burst: 10, handshake_rate: 1 },
    services: { echo: { path: '/echo', type: 'echo', allow_missing_origin: true } },
  });
  try {
    const r = await burst(gw.url('/echo'), 40);
    assert.ok(r.opened >= 10 && r.opened < 40, `some opened, the rest refused: ${JSON.stringify(r)}`);
    assert.ok(r.refused.every((s) => s === 429) && r.refused.length > 0);
    const line = gw.logs.find((l) => l.reason === 'handshake_rate');
    assert.match(String(line?.detail), /limits\.handshake_rate/, 'the audit line names the key to change');
  } finally {
    await gw.stop();
  }
});
