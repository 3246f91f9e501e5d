/**
 * Tickets through the whole gateway: issued over HTTP to a caller with a
 * bearer token, used once over a real WebSocket handshake, refused when
 * replayed, and exactly one winner among racing handshakes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { connect, open, refused, roundTrip } from './common.js';

let gw: TestGateway;
let bearer: string;

before(async () => {
  const kp = await generateKeyPair('ES256');
  const dir = mkdtempSync(join(tmpdir(), 'gh-ticket-int-'));
  writeFileSync(join(dir, 'issuer.pem'), await exportSPKI(kp.publicKey));
  bearer = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setSubject('alice').setIssuer('iss').setAudience('gw').setExpirationTime('10m').sign(kp.privateKey);
  gw = await startGateway({
    auth: { failures: { per_address: 1000 } },
    services: {
      chat: {
        path: '/chat', type: 'echo', allow_missing_origin: true, origins: ['https://app.example'],
        auth: { methods: [{ type: 'ticket' }, { type: 'jwt', issuers: [{ issuer: 'iss', audience: 'gw', algorithms: ['ES256'], key_files: [join(dir, 'issuer.pem')] }] }] },
      },
    },
  });
});
after(() => gw.stop());

async function issue(headers: Record<string, string> = { authorization: `Bearer ${bearer}` }) {
  const res = await fetch(gw.httpUrl('/.gatehouse/tickets?service=chat'), { method: 'POST', headers });
  return { status: res.status, headers: res.headers, body: await res.json() as { ticket?: string; expires_in?: number } };
}

describe('tickets through the gateway', () => {
  it('issues a ticket over HTTP; it opens one connection, a replay gets 401', async () => {
    const r = await issue();
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('cache-control'), 'no-store');
    const t = r.body.ticket!;
    const ws = await open(gw.url(`/chat?ticket=${t}`));
    assert.equal(await roundTrip(ws), 'ping');
    const replay = await refused(gw.url(`/chat?ticket=${t}`));
    assert.equal(replay.status, 401);
    assert.ok(gw.auditReasons().includes('ticket_unknown'));
    assert.ok(!gw.logText().includes(t.slice(3)), 'ticket leaked into the log');
    assert.equal(await roundTrip(ws, 'canary'), 'canary');
    ws.close();
  });

  it('of 20 racing handshakes with one ticket exactly one gets 101', async () => {
    const t = (await issue()).body.ticket!;
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => connect(gw.url(`/chat?ticket=${t}`))));
    const opened = outcomes.filter((o) => o.kind === 'open');
    assert.equal(opened.length, 1);
    assert.ok(outcomes.every((o) => o.kind === 'open' || o.status === 401), 'the others get 401');
    for (const o of opened) if (o.kind === 'open') o.ws.close();
  });

  it('the endpoint refuses callers without credentials and foreign origins; CORS only for allowed origins', async () => {
    assert.equal((await issue({})).status, 401);
    const foreign = await issue({ authorization: `Bearer ${bearer}`, origin: 'https://evil.example' });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.headers.get('access-control-allow-origin'), null);
    const allowed = await issue({ authorization: `Bearer ${bearer}`, origin: 'https://app.example' });
    assert.equal(allowed.status, 200);
    assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.equal(allowed.headers.get('access-control-allow-credentials'), 'true');
    // That ticket is bound to https://app.example.
    const wrongOrigin = await refused(gw.url(`/chat?ticket=${allowed.body.ticket}`));
    assert.equal(wrongOrigin.status, 403);
  });
});
