/**
 * A fallback session opened with a credential that is not a header (a ticket
 * in the URL: the documented browser flow) cannot be taken over by someone who
 * learns its id: from another address, with the victim's Origin and no
 * credentials, the attacker can neither read the victim's messages nor inject
 * any. The session key from the open answer, carried in every request's body,
 * is what binds a request to the session. Real gateway, real sockets.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import { mintTicket } from '../../../src/auth/ticket.js';
import { encodeKey, encodeMessage, encodeNumber, FrameType } from '../../../src/fallback/wire.js';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { ALLOWED, openSession, RawSession } from './raw.js';

const KEY = randomBytes(32).toString('hex');
let gw: TestGateway;

before(async () => {
  gw = await startGateway({
    auth: { tickets: { hmac_keys: [KEY] } },
    // (the last check waits for an empty long-poll)
    fallback: { poll_timeout: '1s' },
    services: { chat: { path: '/chat', type: 'echo', origins: [ALLOWED], auth: { methods: [{ type: 'ticket' }] } } },
  });
});
after(() => gw.stop());

/** The attacker's request: another source address, the victim's Origin, no credentials, no key. */
function forged(op: string, sid: string, body: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${gw.httpUrl('/chat')}?gh=${op}&s=${sid}&a=0`, {
      method: 'POST', localAddress: '127.0.0.9', agent: false, headers: { origin: ALLOWED, 'content-type': 'text/plain' },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

it('with the session id alone, another address without credentials reads nothing and injects nothing', { timeout: 30_000 }, async () => {
  const ticket = mintTicket(KEY, { svc: 'chat', sub: 'victim', exp: Math.floor(Date.now() / 1000) + 30, jti: randomBytes(16).toString('base64url') });
  const { res, sid } = await openSession(`${gw.httpUrl('/chat')}?ticket=${ticket}`, { Origin: ALLOWED });
  assert.equal(res.status, 200, 'the victim opens a session with a ticket in the URL');
  const victim = new RawSession(gw.httpUrl('/chat'), sid!, { Origin: ALLOWED });
  const sent = await victim.send(['secret for the victim']);
  assert.equal(sent.status, 200);
  await sent.arrayBuffer();

  for (const op of ['poll', 'stream']) {
    const read = await forged(op, sid!, Buffer.alloc(0));
    assert.equal(read.status, 403, `${op} with the id alone`);
    assert.ok(!read.body.includes(Buffer.from('secret for the victim')), `no message leaked to a ${op}`);
    const guessed = await forged(op, sid!, encodeKey(randomBytes(32)));
    assert.equal(guessed.status, 403, `${op} with a made-up key`);
  }
  const inject = await forged('send', sid!, Buffer.concat([encodeNumber(FrameType.SEQ, 2), encodeMessage(Buffer.from('injected'), false), encodeNumber(FrameType.ACK, 1)]));
  assert.equal(inject.status, 403, 'send with the id alone');
  const line = gw.logs.find((l) => l.audit && l.reason === 'fallback_session_key');
  assert.ok(line, 'audited');
  assert.ok(!JSON.stringify(gw.logs).includes(sid!.slice(0, 32)), 'the session id is in no log line');

  // The victim still gets exactly its own message, unacknowledged by anyone else, and nothing injected.
  const got = await victim.receive(1);
  assert.deepEqual(got.map((f) => (f as { payload: Buffer }).payload.toString()), ['secret for the victim']);
  assert.equal(await victim.echo('still mine'), 'still mine');
  const after = await victim.poll();
  assert.deepEqual(after.messages, [], 'nothing injected');
});
