/**
 * Malformed credentials of every kind, written as raw bytes on a socket (no
 * client library to tidy them up): each gets the right status, an audit line
 * with its reason code and no secret in the log, and a canary connection on
 * the same gateway keeps echoing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import type WebSocket from 'ws';
import { hashPassword } from '../../../src/auth/passwords.js';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { open, roundTrip } from './common.js';

let gw: TestGateway;
let canary: WebSocket;
const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64url');

/** Sends one upgrade request as raw bytes; resolves with the status and headers of the answer. */
function rawRequest(target: string, headerLines: string[]): Promise<{ status: number; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(gw.port, '127.0.0.1');
    let data = '';
    socket.on('data', (d) => {
      data += d.toString('latin1');
      const end = data.indexOf('\r\n\r\n');
      if (end >= 0) { socket.destroy(); resolve({ status: Number(data.split(' ')[1]), head: data.slice(0, end) }); }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`closed without an answer: ${JSON.stringify(data)}`)));
    socket.write([`GET ${target} HTTP/1.1`, `Host: 127.0.0.1:${gw.port}`, 'Upgrade: websocket', 'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`, 'Sec-WebSocket-Version: 13', ...headerLines, '', ''].join('\r\n'));
  });
}

before(async () => {
  const kp = await generateKeyPair('ES256');
  const dir = mkdtempSync(join(tmpdir(), 'gh-bad-auth-'));
  writeFileSync(join(dir, 'issuer.pem'), await exportSPKI(kp.publicKey));
  writeFileSync(join(dir, 'users'), `alice:${await hashPassword('alice-pw')}\n`);
  gw = await startGateway({
    auth: { failures: { per_address: 1000, per_user: 1000 } },
    // Room for a header line longer than the JWT method's max_length, so that its own check answers.
    limits: { header_line_bytes: '16KiB' },
    services: {
      svc: {
        path: '/svc', type: 'echo', allow_missing_origin: true,
        auth: { methods: [
          { type: 'ticket' },
          { type: 'jwt', from: ['header', 'cookie', 'protocol'], issuers: [{ issuer: 'iss', audience: 'svc', algorithms: ['ES256'], key_files: [join(dir, 'issuer.pem')] }] },
          { type: 'basic', users_file: join(dir, 'users') },
        ] },
      },
    },
  });
  const good = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setSubject('canary').setIssuer('iss').setAudience('svc').setExpirationTime('10m').sign(kp.privateKey);
  canary = await open(gw.url('/svc'), { headers: { authorization: `Bearer ${good}` } });
});
after(async () => { canary.close(); await gw.stop(); });

const SECRET = 'Zx9SecretMarker';
const cases: Array<{ name: string; target?: string; headers: string[]; status: number; reason: string }> = [
  { name: 'Bearer without a token', headers: ['Authorization: Bearer'], status: 401, reason: 'auth_missing' },
  { name: 'Bearer with two parts', headers: [`Authorization: Bearer ${SECRET}.abc`], status: 401, reason: 'jwt_malformed' },
  { name: 'oversized token', headers: [`Authorization: Bearer ${SECRET}${'A'.repeat(9000)}.b.c`], status: 401, reason: 'jwt_malformed' },
  { name: 'header segment not an object', headers: [`Authorization: Bearer ${b64('[]')}.${b64(`{"iss":"iss","s":"${SECRET}"}`)}.sig`], status: 401, reason: 'jwt_malformed' },
  { name: 'payload not JSON', headers: [`Authorization: Bearer ${b64('{"alg":"ES256"}')}.${b64(`${SECRET}{`)}.sig`], status: 401, reason: 'jwt_malformed' },
  { name: 'issuer not a string', headers: [`Authorization: Bearer ${b64('{"alg":"ES256"}')}.${b64(`{"iss":{"$ne":1},"s":"${SECRET}"}`)}.sig`], status: 401, reason: 'jwt_unknown_issuer' },
  { name: 'prototype keys in the token', headers: [`Authorization: Bearer ${b64('{"alg":"ES256","__proto__":{"crit":1}}')}.${b64(`{"iss":"__proto__","s":"${SECRET}"}`)}.sig`], status: 401, reason: 'jwt_unknown_issuer' },
  { name: 'two Authorization headers', headers: [`Authorization: Bearer ${SECRET}`, `Authorization: Basic ${b64(`alice:${SECRET}`)}`], status: 401, reason: 'credentials_ambiguous' },
  { name: 'Basic not base64', headers: [`Authorization: Basic ${SECRET}!!`], status: 401, reason: 'basic_malformed' },
  { name: 'Basic not UTF-8', headers: [`Authorization: Basic ${Buffer.concat([Buffer.from('alice:'), Buffer.from([0xc3, 0x28])]).toString('base64')}`], status: 401, reason: 'basic_malformed' },
  { name: 'Basic wrong password', headers: [`Authorization: Basic ${Buffer.from(`alice:${SECRET}`).toString('base64')}`], status: 401, reason: 'basic_invalid' },
  { name: 'unknown scheme', headers: [`Authorization: Negotiate ${SECRET}`], status: 401, reason: 'auth_missing' },
  { name: 'conflicting token cookies', headers: [`Cookie: access_token=${SECRET}a; access_token=${SECRET}b`], status: 401, reason: 'cookie_ambiguous' },
  { name: 'two Cookie headers in conflict', headers: [`Cookie: access_token=${SECRET}a`, `Cookie: access_token=${SECRET}b`], status: 401, reason: 'cookie_ambiguous' },
  { name: 'cookie garbage', headers: [`Cookie: ;;==;${SECRET};=`], status: 401, reason: 'auth_missing' },
  { name: 'empty protocol carrier', headers: ['Sec-WebSocket-Protocol: bearer.'], status: 401, reason: 'auth_missing' },
  { name: 'protocol carrier with a bad token', headers: [`Sec-WebSocket-Protocol: chat, bearer.${SECRET}`], status: 401, reason: 'jwt_malformed' },
  { name: 'empty ticket', target: '/svc?ticket=', headers: [], status: 401, reason: 'ticket_malformed' },
  { name: 'two tickets', target: `/svc?ticket=gt.${SECRET}&ticket=gt.other`, headers: [], status: 401, reason: 'ticket_ambiguous' },
  { name: 'ticket with control bytes', target: `/svc?ticket=gt.${SECRET}%00%0d%0a`, headers: [], status: 401, reason: 'ticket_malformed' },
  { name: 'random ticket', target: `/svc?ticket=gt.${randomBytes(32).toString('base64url')}`, headers: [], status: 401, reason: 'ticket_unknown' },
  { name: 'forged minted ticket', target: `/svc?ticket=gm1.${b64(`{"svc":"svc","sub":"${SECRET}"}`)}.${'A'.repeat(43)}`, headers: [], status: 401, reason: 'ticket_invalid' },
];

describe('malformed credentials through the gateway', () => {
  for (const c of cases) {
    it(`${c.name} → ${c.status} ${c.reason}`, async () => {
      const r = await rawRequest(c.target ?? '/svc', c.headers);
      assert.equal(r.status, c.status, r.head);
      assert.ok(gw.logs.some((l) => l.reason === c.reason), `audit line ${c.reason}`);
      assert.ok(!gw.logText().includes(SECRET), 'a credential reached the log');
      assert.equal(await roundTrip(canary, c.name), c.name, 'canary still echoes');
    });
  }
});
