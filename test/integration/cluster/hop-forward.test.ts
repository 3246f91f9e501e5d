/**
 * HopForwarder over real sockets: a fallback request passed on to its
 * session's owner. What it tells the caller decides the client's fate: an
 * owner that cannot be reached is gone (404: the session ended), but a
 * connection that was made and then broke before the answer (an owner closing
 * a kept-alive socket as the forwarder reuses it, a reset) is no verdict on
 * the owner: the client must be told to try again (503), not that its
 * session is over.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { HopForwarder, HopListener, HopSigner, type HopClient, type HopOutcome } from '../../../src/cluster/hop.js';

const signer = new HopSigner(randomBytes(24).toString('hex'));
const forwarder = new HopForwarder(signer);
const CLIENT: HopClient = { address: '203.0.113.7', port: 40000, secure: false };
let owner: HopListener;
let ownerUrl = '';
let target = '';
let front: http.Server;
let frontUrl = '';
const outcomes: HopOutcome[] = [];
const seenBy: HopClient[] = [];

before(async () => {
  owner = new HopListener(signer, (req, res, client) => {
    seenBy.push(client);
    if (req.url?.includes('reset')) { req.socket.destroy(); return; }
    req.resume();
    req.on('end', () => { res.writeHead(200, { 'Content-Type': 'text/plain' }); res.end('from the owner'); });
  });
  ownerUrl = await owner.listen('127.0.0.1', 0);
  front = http.createServer((req, res) => {
    void forwarder.forward(req, res, target, CLIENT).then((outcome) => {
      outcomes.push(outcome);
      if (outcome === 'passed') return;
      res.writeHead(outcome === 'broken' ? 503 : 404);
      res.end();
    });
  });
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  frontUrl = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
});
after(async () => {
  forwarder.close();
  await owner.close();
  front.closeAllConnections();
  await new Promise((r) => front.close(r));
});

async function post(path: string): Promise<{ status: number; body: string; outcome: HopOutcome | undefined }> {
  const before = outcomes.length;
  const res = await fetch(`${frontUrl}${path}`, { method: 'POST', body: 'key-and-frames' });
  const body = await res.text();
  return { status: res.status, body, outcome: outcomes[before] };
}

test('a request reaches its owner, signed, with the client as the first process saw it; the answer comes back', { timeout: 10_000 }, async () => {
  target = ownerUrl;
  const r = await post('/echo?gh=send&s=x');
  assert.deepEqual([r.status, r.body, r.outcome], [200, 'from the owner', 'passed']);
  assert.deepEqual(seenBy.at(-1), CLIENT, 'the owner read the client the forwarder was given');
});

test('an owner that takes no connection is gone: unreachable', { timeout: 10_000 }, async () => {
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((r) => closed.close(r));
  target = `http://127.0.0.1:${port}`;
  const r = await post('/echo?gh=stream&s=x');
  assert.deepEqual([r.status, r.outcome], [404, 'unreachable']);
});

test('a connection to the owner that breaks before its answer (on a kept-alive socket or a new one) is no verdict on the owner: broken, and the client may retry', { timeout: 10_000 }, async () => {
  target = ownerUrl;
  // The first request leaves a kept-alive socket in the forwarder's pool; the next goes over it and is reset.
  assert.equal((await post('/echo?gh=send&s=x')).outcome, 'passed');
  const reused = await post('/echo?gh=stream&s=x&reset=1');
  assert.deepEqual([reused.status, reused.outcome], [503, 'broken'], 'reset on a reused socket');
  const fresh = await post('/echo?gh=stream&s=x&reset=2');
  assert.deepEqual([fresh.status, fresh.outcome], [503, 'broken'], 'reset on a new connection');
  const again = await post('/echo?gh=send&s=x');
  assert.deepEqual([again.status, again.outcome], [200, 'passed'], 'the owner is still there');
});
