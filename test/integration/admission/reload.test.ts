/**
 * A configuration reload (what SIGHUP does) applies the listeners too, or is
 * refused saying what stands in its way: a changed certificate path is
 * served, an unreadable certificate is refused, a new port opens and a
 * removed one closes, a change a running listener cannot take needs a
 * restart. Open connections live through all of it; retired services are not
 * kept once their sessions have ended.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect as netConnect, type Server } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { once } from 'node:events';
import WebSocket from 'ws';
import { parseConfig } from '../../../src/config/load.js';
import type { GatehouseConfig } from '../../../src/config/schema.js';
import { freePort } from '../../e2e/helpers/nginx.js';
import { TestPki, rawExchange, startDoor, upgradeRequest, type Door } from './harness.js';

let pki: TestPki;
let certA: { cert: string; key: string };
let certB: { cert: string; key: string };
const SERVICES = { s: { path: '/s', type: 'echo', allow_missing_origin: true } };

before(() => {
  pki = new TestPki();
  certA = pki.serverCert('a', ['a.test']);
  certB = pki.serverCert('b', ['b.test']);
});
after(() => pki.cleanup());

function servedName(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s: TLSSocket = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => {
      const cn = String(s.getPeerCertificate().subject.CN);
      s.destroy();
      resolve(cn);
    });
    s.on('error', reject);
  });
}

/** The door's config with changes, parsed as a reload would read it. */
function variant(door: Door, raw: Record<string, unknown>): GatehouseConfig {
  return parseConfig({ log: { level: 'info', bad_input_per_second: 10_000 }, services: SERVICES, ...raw }, {});
}

async function refusedWith(door: Door, config: GatehouseConfig, pattern: RegExp, message: string): Promise<void> {
  await assert.rejects(door.gateway.reload(config), (err: Error & { issues?: string[] }) => {
    assert.match((err.issues ?? []).join('\n'), pattern, message);
    return true;
  }, message);
}

function openWss(port: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`wss://127.0.0.1:${port}/s`, { rejectUnauthorized: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

test('a changed certificate path is served after the reload; an unreadable one is refused and the old one stays', { timeout: 30_000 }, async () => {
  const door = await startDoor({ listen: [{ host: '127.0.0.1', port: 0, tls: certA }], services: SERVICES });
  try {
    const ws = await openWss(door.port);
    assert.equal(await servedName(door.port), 'a.test', 'certificate A at start');
    // The port was chosen at start (0): the reloaded config names the same listener by it.
    const port = door.port;
    await door.gateway.reload(variant(door, { listen: [{ host: '127.0.0.1', port, tls: certB }] }));
    assert.equal(await servedName(port), 'b.test', 'the new certificate path is served');

    await refusedWith(door, variant(door, { listen: [{ host: '127.0.0.1', port, tls: { cert: pki.path('missing.crt'), key: certB.key } }] }),
      /listen\.0\.tls: cannot read TLS cert file .*missing\.crt/, 'a missing certificate file refuses the reload, naming it');
    assert.equal(await servedName(port), 'b.test', 'the certificate in use stays');

    const echoed = new Promise<string>((resolve) => ws.once('message', (d: Buffer) => resolve(d.toString())));
    ws.send('still open');
    assert.equal(await echoed, 'still open', 'the open connection lived through both reloads');
    ws.terminate();
  } finally {
    await door.stop();
  }
});

test('a new listener opens and a removed one stops accepting; a port that cannot be bound refuses the reload', { timeout: 30_000 }, async () => {
  const door = await startDoor({ listen: [{ host: '127.0.0.1', port: 0 }], services: SERVICES });
  const blocker: Server = createServer();
  try {
    const first = door.port;
    const extra = await freePort();
    const both = variant(door, { listen: [{ host: '127.0.0.1', port: first }, { host: '127.0.0.1', port: extra }] });
    await door.gateway.reload(both);
    assert.equal((await rawExchange(extra, upgradeRequest('/s'), { waitClose: false })).status, 101, 'the new port accepts');
    assert.deepEqual(door.gateway.addresses.map((a) => a.port), [first, extra], 'the addresses follow');

    await door.gateway.reload(variant(door, { listen: [{ host: '127.0.0.1', port: first }] }));
    const refused = await new Promise<string>((resolve) => {
      const s = netConnect(extra, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve('connected'); });
      s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    assert.equal(refused, 'ECONNREFUSED', 'the removed port is closed');

    blocker.listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const taken = (blocker.address() as { port: number }).port;
    await refusedWith(door, variant(door, { listen: [{ host: '127.0.0.1', port: first }, { host: '127.0.0.1', port: taken }] }),
      /listen\.1: cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/, 'a port in use refuses the reload');
    assert.equal((await rawExchange(first, upgradeRequest('/s'), { waitClose: false })).status, 101, 'the running listener still serves');
  } finally {
    blocker.close();
    await door.stop();
  }
});

test('a change a running listener cannot take is refused, naming it and the restart it needs', { timeout: 30_000 }, async () => {
  const door = await startDoor({ listen: [{ host: '127.0.0.1', port: 0 }], services: SERVICES });
  try {
    const port = door.port;
    await refusedWith(door, variant(door, { listen: [{ host: '127.0.0.1', port, proxy_protocol: true }] }),
      /listen\.0\.proxy_protocol: changed; this needs a restart/, 'turning on the PROXY protocol needs a restart');
    await refusedWith(door, variant(door, { listen: [{ host: '127.0.0.1', port, tls: certA }] }),
      /listen\.0\.tls: changed; this needs a restart/, 'turning on TLS needs a restart');
    await refusedWith(door, variant(door, { listen: [{ host: '127.0.0.1', port }], limits: { header_bytes: '32KiB' } }),
      /limits\.header_bytes: changed; this needs a restart/, 'the parser was built with the header size');
    assert.equal((await rawExchange(port, upgradeRequest('/s', [['X-Forwarded-For', '203.0.113.7']]), { waitClose: false })).status, 101);
    assert.equal(door.admissions.at(-1)?.client.address, '127.0.0.1', 'nothing of the refused reloads was applied');

    // What a running listener can take is applied: trusted proxies, host names.
    await door.gateway.reload(variant(door, { listen: [{ host: '127.0.0.1', port, hosts: ['127.0.0.1'] }], trusted_proxies: ['127.0.0.1'] }));
    assert.equal((await rawExchange(port, upgradeRequest('/s', [['X-Forwarded-For', '203.0.113.7']]), { waitClose: false })).status, 101);
    assert.equal(door.admissions.at(-1)?.client.address, '203.0.113.7', 'the new trusted_proxies apply to the running listener');
    assert.equal((await rawExchange(port, upgradeRequest('/s', [], 'other.example'))).status, 421, 'and its new hosts');
  } finally {
    await door.stop();
  }
});

test('retired services are kept only while sessions they opened are live', { timeout: 30_000 }, async () => {
  const backend = createServer((s) => { s.on('error', () => {}); s.pipe(s); });
  backend.listen(0, '127.0.0.1');
  await once(backend, 'listening');
  const tcp = { t: { path: '/t', type: 'tcp', allow_missing_origin: true, backend: `tcp://127.0.0.1:${(backend.address() as { port: number }).port}` } };
  const door = await startDoor({ listen: [{ host: '127.0.0.1', port: 0 }], services: { ...SERVICES, ...tcp } });
  try {
    const config = variant(door, { listen: [{ host: '127.0.0.1', port: door.port }], services: { ...SERVICES, ...tcp } });
    const ws = new WebSocket(`ws://127.0.0.1:${door.port}/t`);
    await once(ws, 'open');
    for (let i = 0; i < 3; i++) await door.gateway.reload(config);
    assert.equal(door.gateway.retiredServices, 1, 'only the tcp service with a live session is kept');
    const closed = once(ws, 'close');
    ws.close();
    await closed;
    const service = [...door.gateway.front.context.services.values()];
    assert.ok(service.length > 0);
    // The retired tcp service's relay ends once the backend answered the FIN: wait for it, then reload.
    for (let i = 0; i < 100 && door.gateway.retiredServices > 0; i++) {
      await door.gateway.reload(config);
      if (door.gateway.retiredServices > 0) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(door.gateway.retiredServices, 0, 'none once the session has ended');
  } finally {
    await door.stop();
    backend.close();
  }
});
