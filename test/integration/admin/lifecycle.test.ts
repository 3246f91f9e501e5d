/**
 * Reload and drain through the admin API, on a gateway started with a
 * configuration file as `gatehouse start --config` does: a reload applies a
 * new file or refuses a bad one with its issues; a drain makes /readyz answer
 * 503 until the gateway has stopped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile } from '../../../src/config/load.js';
import { Gateway } from '../../../src/gateway.js';
import { createLogger } from '../../../src/observe/log.js';
import { RawClient } from '../../helpers/raw-client.js';

const TOKEN = 'lifecycle-admin-token-0123';

function configText(services: string): string {
  return `listen: [{ host: 127.0.0.1, port: 0 }]
admin: { host: 127.0.0.1, port: 0, token: ${TOKEN} }
shutdown: { drain_timeout: 3s }
websocket: { close_timeout: 30s }
services:
${services}`;
}

async function admin(gw: Gateway, method: string, path: string): Promise<{ status: number; body: string }> {
  const a = gw.admin!.address!;
  const r = await fetch(`http://127.0.0.1:${a.port}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}` } });
  return { status: r.status, body: await r.text() };
}

test('reload: a new file is applied; a bad one is refused with its issues and the running one stays', { timeout: 20_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-admin-life-'));
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(file, configText('  echo: { path: /echo, type: echo, allow_missing_origin: true }\n'));
  const gw = await Gateway.start(loadConfigFile(file), { logger: createLogger('silent'), configSource: () => loadConfigFile(file) });
  try {
    writeFileSync(file, configText('  echo: { path: /echo, type: echo, allow_missing_origin: true }\n  two: { path: /two, type: echo }\n'));
    const ok = await admin(gw, 'POST', '/api/reload');
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual((JSON.parse(ok.body) as { services: string[] }).services, ['echo', 'two']);
    assert.deepEqual(Object.keys(gw.currentConfig.services), ['echo', 'two']);

    writeFileSync(file, configText('  echo: { path: echo, type: echo }\n'));
    const bad = await admin(gw, 'POST', '/api/reload');
    assert.equal(bad.status, 422);
    assert.match(bad.body, /services\.echo\.path/);
    assert.deepEqual(Object.keys(gw.currentConfig.services), ['echo', 'two'], 'the running configuration stays');
  } finally {
    await gw.stop(0);
  }
});

test('drain: /readyz is 503 from the drain call until the gateway stops; /healthz stays 200', { timeout: 20_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-admin-drain-'));
  const file = join(dir, 'gatehouse.yaml');
  writeFileSync(file, configText('  echo: { path: /echo, type: echo, allow_missing_origin: true }\n'));
  const gw = await Gateway.start(loadConfigFile(file), { logger: createLogger('silent') });
  // A client that never answers the gateway's Close keeps the drain going until its timeout.
  const raw = await RawClient.connect({ port: gw.addresses[0].port });
  const res = await raw.upgrade('/echo');
  assert.equal(res.status, 101);
  assert.equal((await admin(gw, 'GET', '/readyz')).status, 200);

  const drain = await admin(gw, 'POST', '/api/drain');
  assert.equal(drain.status, 202);
  const ready = await admin(gw, 'GET', '/readyz');
  assert.equal(ready.status, 503, 'not ready while draining');
  assert.match(ready.body, /draining/);
  assert.equal((await admin(gw, 'GET', '/healthz')).status, 200, 'alive while draining');
  const frame = await raw.readFrame(5000);
  assert.equal(frame.payload.readUInt16BE(0), 1001, 'the open client is sent 1001');
  await gw.stopped;
  await assert.rejects(admin(gw, 'GET', '/healthz'), 'the admin listener is closed once stopped');
});
