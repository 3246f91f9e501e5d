/**
 * Behind a real nginx configured as its WebSocket documentation says (it
 * appends the client to X-Forwarded-For and passes any other header through),
 * a client must not be able to choose the address its limits are counted
 * under by writing a `Forwarded` header of its own. The client connects from
 * 127.0.0.2, nginx reaches the gateway from 127.0.0.3 (`proxy_bind`), and only
 * 127.0.0.3 is a trusted proxy.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { startWebSocketProxy, type Nginx } from '../../e2e/helpers/nginx.js';
import { RawClient } from '../../helpers/raw-client.js';
import { rawExchange, startDoor, upgradeRequest, type Door } from './harness.js';

let door: Door;
let nginx: Nginx;

before(async () => {
  door = await startDoor({
    listen: [{ port: 0 }],
    trusted_proxies: ['127.0.0.3'],
    limits: { connections_per_address: 3 },
    services: { s: { path: '/s', type: 'echo', allow_missing_origin: true } },
  });
  nginx = await startWebSocketProxy(door.port, { bind: '127.0.0.3' });
});
after(async () => {
  await nginx?.stop();
  await door?.stop();
});

/** An upgrade through nginx from 127.0.0.2; resolves with the status and the open socket. */
function upgradeThroughProxy(headers: Array<[string, string]>): Promise<{ status: number; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port: nginx.port, host: '127.0.0.1', localAddress: '127.0.0.2' }, () => socket.write(upgradeRequest('/s', headers)));
    let data = '';
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer through nginx: ${JSON.stringify(data)}`)); }, 5000);
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      data += d;
      if (!data.includes('\r\n\r\n')) return;
      clearTimeout(timer);
      socket.removeAllListeners('data');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0), socket });
    });
    socket.on('error', () => { /* the status, or the timeout, tells */ });
  });
}

test('a client-written Forwarded header behind nginx does not move the client out of its limits', { timeout: 30_000 }, async () => {
  const held: Socket[] = [];
  try {
    const statuses: number[] = [];
    for (let i = 1; i <= 4; i++) {
      // Each handshake claims another address, and spoofs X-Forwarded-For too (nginx appends the real one).
      const r = await upgradeThroughProxy([['Forwarded', `for=198.51.100.${i}`], ['X-Forwarded-For', `203.0.113.${i}`]]);
      statuses.push(r.status);
      held.push(r.socket);
    }
    assert.deepEqual(statuses, [101, 101, 101, 429], 'the fourth held connection is over connections_per_address for 127.0.0.2');
    for (const a of door.admissions) assert.equal(a.client.address, '127.0.0.2', 'the client is the hop nginx appended');
    assert.ok(await door.audited('too_many_connections'), 'the refusal is audited');
    const line = door.lines.find((l) => l.audit === true && l.reason === 'too_many_connections');
    assert.equal(line?.client, '127.0.0.2', 'the audit line names the address nginx saw');

  } finally {
    for (const s of held) s.destroy();
  }
});

test('a peer that sends X-Forwarded-For without being trusted is named once in a warning; refusals name the key', { timeout: 20_000 }, async () => {
  const plain = await startDoor({
    listen: [{ port: 0 }],
    limits: { connections_per_address: 1 },
    services: { s: { path: '/s', type: 'echo', allow_missing_origin: true } },
  });
  try {
    const first = await RawClient.connect({ port: plain.port });
    assert.equal((await first.upgrade('/s', { 'X-Forwarded-For': '203.0.113.5' })).status, 101, 'the header is ignored, the request served');
    const warned = await plain.logged(/trusted_proxies does not list it/);
    assert.equal(warned?.peer, '127.0.0.1', 'the warning names the peer');
    const second = await rawExchange(plain.port, upgradeRequest('/s', [['X-Forwarded-For', '203.0.113.6']]));
    assert.equal(second.status, 429, 'the second connection of the address is over connections_per_address');
    assert.equal(plain.lines.filter((l) => typeof l.msg === 'string' && /trusted_proxies does not list it/.test(l.msg)).length, 1, 'warned once per address');
    const refusal = await plain.audited('too_many_connections');
    assert.match(String(refusal?.detail), /limits\.connections_per_address = 1.*trusted_proxies/, 'the audit line names the keys to change');
    first.destroy();
  } finally {
    await plain.stop();
  }
});

test('fallback refusals are audited with the resolved client, as upgrades are', { timeout: 20_000 }, async () => {
  const trusting = await startDoor({
    listen: [{ port: 0 }],
    trusted_proxies: ['127.0.0.1'],
    services: { s: { path: '/s', type: 'echo', allow_missing_origin: true } },
  });
  try {
    const request = ['POST /s?gh=stream&s=short HTTP/1.1', 'Host: 127.0.0.1', 'X-Forwarded-For: 203.0.113.9', 'Content-Length: 0', '', ''].join('\r\n');
    assert.equal((await rawExchange(trusting.port, request, { waitClose: false })).status, 400, 'a malformed session id');
    const line = await trusting.audited('fallback_bad_session_id');
    assert.equal(line?.client, '203.0.113.9', 'the audit line names the client the trusted proxy forwarded, not the proxy');
  } finally {
    await trusting.stop();
  }
});
