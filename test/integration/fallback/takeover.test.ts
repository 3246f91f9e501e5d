/**
 * A fallback session opened with a credential that is not a header (a ticket
 * in the URL: the documented browser flow) cannot be taken over by someone who
 * learns its id: from another address, with the victim's Origin and no
 * credentials, the attacker can neither read the victim's messages nor inject
 * any. The session key from the open answer, carried in every request's body,
 * is what binds a request to the session. Nor does such a session trip over
 * a cookie it never used: only a credential the headers carried is re-checked
 * when the headers change. Real gateway, real sockets.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { mintTicket } from '../../../src/auth/ticket.js';
import { encodeKey, encodeMessage, encodeNumber, FrameType } from '../../../src/fallback/wire.js';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { ALLOWED, openSession, RawSession } from './raw.js';

const KEY = randomBytes(32).toString('hex');
const ISS = 'https://login.test';
let gw: TestGateway;
let signingKey: CryptoKey;

before(async () => {
  const pair = await generateKeyPair('ES256');
  signingKey = pair.privateKey;
  const dir = mkdtempSync(join(tmpdir(), 'gh-takeover-'));
  writeFileSync(join(dir, 'issuer.pem'), await exportSPKI(pair.publicKey));
  const jwt = { type: 'jwt', from: ['cookie', 'query'], issuers: [{ issuer: ISS, audience: 'chat', algorithms: ['ES256'], key_files: [join(dir, 'issuer.pem')] }] };
  gw = await startGateway({
    auth: { tickets: { hmac_keys: [KEY] } },
    // (the last check waits for an empty long-poll)
    fallback: { poll_timeout: '1s' },
    services: {
      chat: { path: '/chat', type: 'echo', origins: [ALLOWED], auth: { methods: [{ type: 'ticket' }] } },
      mixed: { path: '/mixed', type: 'echo', origins: [ALLOWED], auth: { methods: [{ type: 'ticket' }, jwt] } },
    },
  });
});

function ticketFor(svc: string, sub: string): string {
  return mintTicket(KEY, { svc, sub, exp: Math.floor(Date.now() / 1000) + 30, jti: randomBytes(16).toString('base64url') });
}

function token(sub: string): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setSubject(sub).setIssuer(ISS).setAudience('chat')
    .setIssuedAt().setExpirationTime(Math.floor(Date.now() / 1000) + 600).sign(signingKey);
}
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
  const { res, sid } = await openSession(`${gw.httpUrl('/chat')}?ticket=${ticketFor('chat', 'victim')}`, { Origin: ALLOWED });
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

it('a session opened with a ticket or a query token ignores cookies it never used; one opened with a cookie has it re-checked', { timeout: 30_000 }, async () => {
  const strangers = [{ Origin: ALLOWED, Cookie: 'theme=dark' }, { Origin: ALLOWED, Cookie: `access_token=${await token('mallory')}` }, { Origin: ALLOWED, Cookie: 'access_token=garbage' }];
  for (const [how, query] of [['a ticket', `ticket=${ticketFor('mixed', 'erin')}`], ['a query token', `access_token=${await token('erin')}`]]) {
    const { res, sid } = await openSession(`${gw.httpUrl('/mixed')}?${query}`, { Origin: ALLOWED });
    assert.equal(res.status, 200, `opened with ${how}`);
    const session = new RawSession(gw.httpUrl('/mixed'), sid!, { Origin: ALLOWED });
    // The page set a cookie since, or someone else's token shows up in one: the key binds the session, not a cookie (it used to get 401).
    for (const headers of strangers) {
      session.headers = headers;
      assert.equal(await session.echo(`with ${headers.Cookie}`), `with ${headers.Cookie}`, `${how}: a session request with ${headers.Cookie}`);
    }
  }
  // A session the cookie opened: a changed cookie is still checked afresh (the same user's new token passes; garbage 401, another user 403).
  const { res, sid } = await openSession(gw.httpUrl('/mixed'), { Origin: ALLOWED, Cookie: `access_token=${await token('erin')}` });
  assert.equal(res.status, 200, 'opened with a cookie');
  const session = new RawSession(gw.httpUrl('/mixed'), sid!, { Origin: ALLOWED, Cookie: `access_token=${await token('erin')}; theme=dark` });
  assert.equal(await session.echo('refreshed'), 'refreshed', 'the same user\'s token in a changed cookie');
  assert.equal((await session.poll({ Origin: ALLOWED, Cookie: 'access_token=garbage' })).res.status, 401, 'a bad token in the cookie');
  assert.equal((await session.poll({ Origin: ALLOWED, Cookie: `access_token=${await token('mallory')}` })).res.status, 403, 'another user\'s token');
  assert.equal((await session.poll({ Origin: ALLOWED })).res.status, 401, 'no cookie');
  assert.equal(await session.echo('still erin'), 'still erin');
});
