/**
 * The ticket endpoint under attack, through the whole gateway: a request for a
 * ticket authenticates its caller, so it passes the limits a handshake passes
 * (handshake rate, connections per address), and no caller can hold more than
 * `auth.tickets.per_principal` unused tickets.
 *
 * Clients come from distinct loopback addresses (127.0.0.x as TCP source).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { open, roundTrip } from './common.js';

let gw: TestGateway;
let signer: CryptoKey;

before(async () => {
  const kp = await generateKeyPair('ES256');
  signer = kp.privateKey;
  const dir = mkdtempSync(join(tmpdir(), 'gh-ticket-endpoint-'));
  writeFileSync(join(dir, 'issuer.pem'), await exportSPKI(kp.publicKey));
  gw = await startGateway({
    // One token a second after a burst of 50: what passes the burst is countable.
    limits: { handshake_rate: 1, handshake_burst: 50, connections_per_address: 2 },
    auth: { failures: { per_address: 1000 }, tickets: { per_principal: 3 } },
    services: {
      chat: {
        path: '/chat', type: 'echo', allow_missing_origin: true, origins: ['https://*.example.com'],
        auth: { methods: [{ type: 'ticket' }, { type: 'jwt', issuers: [{ issuer: 'iss', audience: 'gw', algorithms: ['ES256'], key_files: [join(dir, 'issuer.pem')] }] }] },
      },
    },
  });
});
after(() => gw.stop());

const bearer = (sub: string) => new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setSubject(sub).setIssuer('iss').setAudience('gw').setExpirationTime('10m').sign(signer);

/** POST for a ticket from loopback address `from`. */
function requestTicket(from: string, headers: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: { ticket?: string; reason?: string } }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: gw.port, path: '/.gatehouse/tickets?service=chat', method: 'POST', localAddress: from, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) as { ticket?: string } : {} }));
    });
    req.on('error', reject);
    req.end();
  });
}

const jwtOk = () => gw.gateway.metrics.get('gatehouse_auth_total', { method: 'jwt', result: 'ok' });

describe('the ticket endpoint under attack', () => {
  it('100 parallel valid requests from one address: the handshake rate refuses those past the burst before authenticating them', { timeout: 30_000 }, async () => {
    const tokens = await Promise.all(Array.from({ length: 100 }, (_, i) => bearer(`user-${i}`)));
    const authenticatedBefore = jwtOk();
    const started = performance.now();
    const answers = await Promise.all(tokens.map((t) => requestTicket('127.0.0.31', { authorization: `Bearer ${t}` })));
    const seconds = (performance.now() - started) / 1000;
    const issued = answers.filter((a) => a.status === 200).length;
    const limited = answers.filter((a) => a.status === 429 && a.body.reason === 'handshake_rate').length;
    assert.equal(issued + limited, 100, `every answer is a ticket or 429 handshake_rate: ${JSON.stringify(answers.map((a) => a.status))}`);
    // The bucket holds 50 and refills one a second while the requests are answered.
    assert.ok(issued >= 50 && issued <= 50 + Math.ceil(seconds), `tickets issued: ${issued} in ${seconds.toFixed(1)} s`);
    assert.equal(jwtOk() - authenticatedBefore, issued, 'only the admitted requests were authenticated');
    assert.ok(answers.every((a) => a.status !== 429 || Number(a.headers['retry-after']) >= 1), 'Retry-After');
  });

  it('a request for a ticket counts against connections_per_address while it is answered', { timeout: 30_000 }, async () => {
    const token = await bearer('dora');
    const held = [
      await open(gw.url('/chat'), { headers: { authorization: `Bearer ${token}` }, localAddress: '127.0.0.32' }),
      await open(gw.url('/chat'), { headers: { authorization: `Bearer ${token}` }, localAddress: '127.0.0.32' }),
    ];
    const refused = await requestTicket('127.0.0.32', { authorization: `Bearer ${token}` });
    assert.equal(refused.status, 429, JSON.stringify(refused.body));
    assert.equal(refused.body.reason, 'too_many_connections');
    assert.equal((await requestTicket('127.0.0.33', { authorization: `Bearer ${token}` })).status, 200, 'another address is unaffected');
    assert.equal(await roundTrip(held[0], 'canary'), 'canary', 'the held connections are unaffected');
    for (const ws of held) ws.close();
  });

  it('one principal holds at most per_principal unused tickets (429 ticket_limit); using one frees its place; others unaffected', { timeout: 30_000 }, async () => {
    const token = await bearer('mallory');
    const tickets: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await requestTicket('127.0.0.34', { authorization: `Bearer ${token}` });
      assert.equal(r.status, 200, `ticket ${i}`);
      tickets.push(r.body.ticket!);
    }
    const over = await requestTicket('127.0.0.34', { authorization: `Bearer ${token}` });
    assert.equal(over.status, 429, 'the fourth');
    assert.equal(over.body.reason, 'ticket_limit');
    const retry = Number(over.headers['retry-after']);
    assert.ok(retry >= 1 && retry <= 30, `Retry-After ${retry}: when the oldest expires`);
    assert.ok(gw.auditReasons().includes('ticket_limit'), 'audited');
    assert.equal((await requestTicket('127.0.0.35', { authorization: `Bearer ${await bearer('nina')}` })).status, 200, 'another principal');
    const ws = await open(gw.url(`/chat?ticket=${tickets[0]}`), { localAddress: '127.0.0.34' });
    ws.close();
    assert.equal((await requestTicket('127.0.0.34', { authorization: `Bearer ${token}` })).status, 200, 'a used ticket frees its place');
  });

  it('Origin is matched as the admission matches it: a `*.` pattern admits a subdomain, the ticket then opens the WebSocket from it', { timeout: 30_000 }, async () => {
    const token = await bearer('olga');
    const from = async (origin: string) => requestTicket('127.0.0.36', { authorization: `Bearer ${token}`, origin });
    const sub = await from('https://app.example.com');
    assert.equal(sub.status, 200, JSON.stringify(sub.body));
    assert.equal(sub.headers['access-control-allow-origin'], 'https://app.example.com');
    const ws = await open(gw.url(`/chat?ticket=${sub.body.ticket}`), { headers: { origin: 'https://app.example.com' }, localAddress: '127.0.0.36' });
    assert.equal(await roundTrip(ws), 'ping');
    ws.close();
    const own = await from(`http://127.0.0.1:${gw.port}`);
    assert.equal(own.status, 200, 'the gateway\'s own origin');
    for (const foreign of ['https://example.com', 'https://app.example.com.evil.net', 'http://app.example.com', 'null', 'https://a https://b']) {
      const r = await from(foreign);
      assert.equal(r.status, 403, foreign);
      assert.equal(r.body.reason, 'ticket_origin_forbidden', foreign);
      assert.equal(r.headers['access-control-allow-origin'], undefined, `no CORS for ${foreign}`);
    }
  });
});

