/**
 * Identity to backends: a WebSocket backend behind the gateway learns who the
 * client is from the gateway (headers, or a JWT the gateway signs), never from
 * the client's own credentials or from headers the client made up.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingHttpHeaders } from 'node:http';
import { SignJWT, importSPKI, jwtVerify } from 'jose';
import WebSocket, { WebSocketServer } from 'ws';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';

const SECRET = 'identity-test-secret-0123456789-abcdef';
let backend: WebSocketServer;
let seen: IncomingHttpHeaders[] = [];
let gw: TestGateway;
let publicPem: string;

before(async () => {
  backend = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  backend.on('connection', (ws, req) => {
    seen.push(req.headers);
    ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary }));
  });
  await once(backend, 'listening');
  const port = (backend.address() as { port: number }).port;
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const dir = mkdtempSync(join(tmpdir(), 'gh-identity-'));
  const keyFile = join(dir, 'identity.pem');
  writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const auth = { methods: [{ type: 'jwt', issuers: [{ issuer: 'test-idp', audience: 'gatehouse', algorithms: ['HS256'], secret: SECRET }] }] };
  gw = await startGateway({
    services: {
      headers: { path: '/headers', type: 'websocket', backend: `ws://127.0.0.1:${port}/`, allow_missing_origin: true, auth },
      signed: {
        path: '/signed', type: 'websocket', backend: `ws://127.0.0.1:${port}/`, allow_missing_origin: true, auth,
        identity: { mode: 'jwt', signing_key_file: keyFile, issuer: 'gatehouse-test', key_id: 'k1' },
      },
    },
  });
});

after(async () => {
  await gw.stop();
  backend.close();
});

async function token(sub: string, roles: string[]): Promise<string> {
  return new SignJWT({ roles }).setProtectedHeader({ alg: 'HS256' }).setIssuer('test-idp').setAudience('gatehouse')
    .setSubject(sub).setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));
}

async function connect(path: string, headers: Record<string, string>): Promise<IncomingHttpHeaders> {
  seen = [];
  const ws = new WebSocket(gw.url(path), { headers });
  await once(ws, 'open');
  ws.send('hi');
  await once(ws, 'message');
  ws.close();
  await once(ws, 'close');
  assert.equal(seen.length, 1);
  return seen[0];
}

test('headers mode: the backend gets the verified user and roles, not the token or forged identity headers', async () => {
  const jwt = await token('alice', ['reader', 'writer']);
  const h = await connect('/headers', { Authorization: `Bearer ${jwt}`, 'X-Gatehouse-User': 'admin', Cookie: 'sid=secret' });
  assert.equal(h['x-gatehouse-user'], 'alice');
  assert.equal(h['x-gatehouse-roles'], 'reader,writer');
  assert.equal(h['x-gatehouse-auth-method'], 'jwt');
  assert.equal(h.authorization, undefined, 'the client credential is not forwarded');
  assert.equal(h.cookie, undefined, 'cookies are not forwarded');
  assert.ok(!gw.logText().includes(jwt), 'the token is never logged');
});

test('jwt mode: the backend gets a short-lived JWT signed by the gateway that it can verify', async () => {
  const h = await connect('/signed', { Authorization: `Bearer ${await token('bob', ['reader'])}` });
  const identity = h['x-gatehouse-identity'];
  assert.equal(typeof identity, 'string');
  const { payload, protectedHeader } = await jwtVerify(identity as string, await importSPKI(publicPem, 'ES256'), {
    issuer: 'gatehouse-test', audience: 'signed',
  });
  assert.equal(protectedHeader.kid, 'k1');
  assert.equal(payload.sub, 'bob');
  assert.deepEqual(payload.roles, ['reader']);
  assert.ok((payload.exp as number) - (payload.iat as number) <= 60);
  assert.equal(h['x-gatehouse-user'], undefined);
  assert.equal(h.authorization, undefined);
});
