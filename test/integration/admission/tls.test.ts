/**
 * Real TLS with certificates made by openssl: versions, SNI with two
 * certificates, Host/SNI mismatch, reload while a connection stays open,
 * mTLS accepted and refused, handshake timeout, renegotiation refused, HSTS
 * and the HTTP → HTTPS redirect listener.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls';
import WebSocket from 'ws';
import { Canary } from './canary.js';
import { TestPki, rawExchange, startDoor, upgradeRequest } from './harness.js';

let pki: TestPki;
let certA: { cert: string; key: string };
let certB: { cert: string; key: string };

before(() => {
  pki = new TestPki();
  certA = pki.serverCert('a', ['a.test', 'localhost']);
  certB = pki.serverCert('b', ['b.test']);
});
after(() => pki.cleanup());

const SERVICES = { s: { path: '/s', type: 'echo', allow_missing_origin: true } };

/** Run `openssl s_client` against the port; resolves with its exit code and output. */
function sClient(port: number, args: string[], input = ''): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('close', (code) => resolve({ code, out }));
    child.stdin.end(input);
  });
}

function peerCert(port: number, servername?: string, extra: Record<string, unknown> = {}): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const s: TLSSocket = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...(servername ? { servername } : {}), ...extra }, () => {
      const c = s.getPeerCertificate();
      s.destroy();
      resolve(c);
    });
    s.on('error', reject);
  });
}

function openWss(port: number, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`wss://127.0.0.1:${port}/s`, { rejectUnauthorized: false, ...options });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_q, res) => reject(new Error(`status ${res.statusCode}`)));
  });
}

function echo(ws: WebSocket, text: string): Promise<string> {
  return new Promise((resolve) => {
    ws.once('message', (d: Buffer) => resolve(d.toString()));
    ws.send(text);
  });
}

test('TLS versions: 1.1 refused with a protocol_version alert (TLS 1.2 minimum); 1.2 refused when 1.3 is the minimum', async () => {
  const door = await startDoor({ listen: [{ port: 0, tls: certA }, { port: 0, tls: { ...certA, min_version: 'TLSv1.3' } }], services: SERVICES });
  try {
    const canary = await Canary.open(`wss://127.0.0.1:${door.ports[0]}/s`, { rejectUnauthorized: false });
    // SECLEVEL=0 so that the *client* is willing to speak TLS 1.1: the refusal must come from the server.
    const old = await canary.during(sClient(door.ports[0], ['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0']));
    assert.notEqual(old.code, 0);
    assert.match(old.out, /alert protocol version/);
    const ok = await sClient(door.ports[0], ['-tls1_2', '-servername', 'a.test'], 'Q\n');
    assert.match(ok.out, /Protocol\s*:\s*TLSv1\.2/);
    const v12 = await sClient(door.ports[1], ['-tls1_2']);
    assert.notEqual(v12.code, 0);
    assert.match(v12.out, /alert protocol version/);
    assert.ok(await door.audited('tls_handshake_failed'));
    await canary.roundTrip();
    canary.close();
  } finally {
    await door.stop();
  }
});

test('SNI chooses between two certificates; unknown SNI gets the default; Host must match SNI (421)', async () => {
  const door = await startDoor({
    listen: [{ port: 0, tls: { ...certA, sni: [{ servername: 'b.test', ...certB }] } }],
    services: SERVICES,
  });
  try {
    assert.equal((await peerCert(door.port, 'a.test')).subject.CN, 'a.test');
    assert.equal((await peerCert(door.port, 'b.test')).subject.CN, 'b.test');
    assert.equal((await peerCert(door.port, 'B.TEST')).subject.CN, 'b.test');
    assert.equal((await peerCert(door.port, 'unknown.test')).subject.CN, 'a.test');
    assert.equal((await peerCert(door.port)).subject.CN, 'a.test');
    const matching = await rawExchange(door.port, upgradeRequest('/s', [], 'b.test'), { tls: { servername: 'b.test' }, waitClose: false });
    assert.equal(matching.status, 101);
    const fronted = await rawExchange(door.port, upgradeRequest('/s', [], 'a.test'), { tls: { servername: 'b.test' } });
    assert.equal(fronted.status, 421);
    assert.ok(await door.audited('sni_host_mismatch'));
  } finally {
    await door.stop();
  }
});

test('certificates reload on a configuration reload (SIGHUP) and on file change while a connection stays open; a broken reload keeps the old ones', async () => {
  const live = { cert: pki.path('live.crt'), key: pki.path('live.key') };
  copyFileSync(certA.cert, live.cert);
  copyFileSync(certA.key, live.key);
  const door = await startDoor({ listen: [{ port: 0, tls: { ...live, watch: true } }], services: SERVICES });
  try {
    const ws = await openWss(door.port);
    assert.equal(await echo(ws, 'before'), 'before');

    // Replace the files, then reload the configuration (what SIGHUP does).
    copyFileSync(certB.cert, live.cert);
    copyFileSync(certB.key, live.key);
    let mark = door.lines.length;
    await door.gateway.reload(door.config);
    assert.ok(await door.logged(/TLS certificates reloaded/, mark), 'the reload read the files again');
    assert.equal((await peerCert(door.port)).subject.CN, 'b.test');
    assert.equal(await echo(ws, 'after reload'), 'after reload', 'the open connection survived');

    // A key that does not match: refused, the contexts in use stay.
    writeFileSync(live.key, readFileSync(certA.key));
    await assert.rejects(door.gateway.reload(door.config), (err: Error & { issues?: string[] }) => /listen\.0\.tls: .*cannot be used/.test(String(err.issues)),
      'a reload whose key does not match its certificate is refused');
    assert.equal((await peerCert(door.port)).subject.CN, 'b.test');

    // Now the matching certificate changes on disk: the watcher reloads by itself.
    mark = door.lines.length;
    copyFileSync(certA.cert, live.cert);
    let reloaded: Record<string, unknown> | undefined;
    for (let i = 0; i < 5 && !reloaded; i++) reloaded = await door.logged(/TLS certificates reloaded/, mark);
    assert.equal(reloaded?.why, 'file changed');
    assert.equal((await peerCert(door.port)).subject.CN, 'a.test');
    assert.equal(await echo(ws, 'still here'), 'still here');
    ws.terminate();
  } finally {
    await door.stop();
  }
});

test('mTLS required: a client certificate from the CA is admitted with its subject; none or a rogue one is refused', async () => {
  const device = pki.clientCert('device', '/CN=device-17/O=Acme');
  const rogue = pki.clientCert('rogue-device', '/CN=device-17/O=Acme', 'rogue');
  const door = await startDoor({
    listen: [{ port: 0, tls: { ...certA, ca: pki.path('ca.crt'), client_certificate: 'required' } }],
    services: SERVICES,
  });
  try {
    const ws = await openWss(door.port, { cert: readFileSync(device.cert), key: readFileSync(device.key) });
    assert.equal(await echo(ws, 'hi'), 'hi');
    const admission = door.admissions.at(-1)!;
    assert.equal(admission.tls?.authorized, true);
    assert.equal(admission.tls?.subject?.CN, 'device-17');
    assert.equal(admission.tls?.subject?.O, 'Acme');

    await assert.rejects(openWss(door.port));
    await assert.rejects(openWss(door.port, { cert: readFileSync(rogue.cert), key: readFileSync(rogue.key) }));
    const refused = (): number => door.metrics.get('gatehouse_rejections_total', { reason: 'tls_client_certificate' });
    for (let i = 0; i < 100 && refused() < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(refused(), 2);
    const details = door.lines.filter((l) => l.reason === 'tls_client_certificate').map((l) => l.detail);
    assert.deepEqual(details.sort(), ['NO_CERTIFICATE', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE']);
    assert.equal(door.admissions.length, 1, 'nothing was admitted without a valid certificate');
    assert.equal(await echo(ws, 'still'), 'still');
    ws.terminate();
  } finally {
    await door.stop();
  }
});

test('mTLS optional: verified certificate → subject; no certificate → admitted, not authorized; rogue → refused', async () => {
  const device = pki.clientCert('device2', '/CN=device-18');
  const rogue = pki.clientCert('rogue2', '/CN=device-18', 'rogue');
  const door = await startDoor({
    listen: [{ port: 0, tls: { ...certA, ca: pki.path('ca.crt'), client_certificate: 'optional' } }],
    services: SERVICES,
  });
  try {
    const a = await openWss(door.port, { cert: readFileSync(device.cert), key: readFileSync(device.key) });
    assert.equal(door.admissions.at(-1)?.tls?.subject?.CN, 'device-18');
    const b = await openWss(door.port);
    assert.equal(door.admissions.at(-1)?.tls?.authorized, false);
    assert.equal(door.admissions.at(-1)?.tls?.subject, undefined);
    await assert.rejects(openWss(door.port, { cert: readFileSync(rogue.cert), key: readFileSync(rogue.key) }));
    assert.ok(await door.audited('tls_client_certificate'));
    assert.equal(door.admissions.length, 2);
    a.terminate();
    b.terminate();
  } finally {
    await door.stop();
  }
});

test('TLS handshake timeout drops silent sockets; cleartext on the TLS port gets no HTTP answer; renegotiation refused', async () => {
  const door = await startDoor({ listen: [{ port: 0, tls: { ...certA, handshake_timeout: '300ms' } }], services: SERVICES });
  try {
    const canary = await Canary.open(`wss://127.0.0.1:${door.port}/s`, { rejectUnauthorized: false });
    const silent = await canary.during(rawExchange(door.port, Buffer.alloc(0)));
    assert.equal(silent.status, 0);
    assert.equal(silent.closed, true);
    assert.ok(await door.audited('tls_handshake_timeout'));

    const cleartext = await rawExchange(door.port, upgradeRequest('/s'));
    assert.equal(cleartext.status, 0, 'never parsed as HTTP');
    assert.equal(cleartext.closed, true);

    // `R` asks s_client to renegotiate (TLS 1.2); the server must refuse.
    const reneg = await sClient(door.port, ['-tls1_2', '-servername', 'a.test'], 'R\n');
    assert.match(reneg.out, /RENEGOTIATING/);
    assert.ok(await door.audited('tls_renegotiation'));
    await canary.roundTrip();
    canary.close();
  } finally {
    await door.stop();
  }
});

test('HSTS on TLS responses; a redirect_http listener answers 308 to https for requests and upgrades', async () => {
  const door = await startDoor({
    listen: [
      { port: 0, tls: certA, hsts: { max_age: 600, include_subdomains: true } },
      { port: 0, redirect_http: { port: 8443 } },
    ],
    services: SERVICES,
  });
  try {
    const page = await rawExchange(door.ports[0], 'GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n', { tls: { servername: 'a.test' } });
    assert.equal(page.status, 200);
    assert.equal(page.headers['strict-transport-security'], 'max-age=600; includeSubDomains');
    const get = await rawExchange(door.ports[1], 'GET /s?x=1 HTTP/1.1\r\nHost: gw.example:8080\r\n\r\n');
    assert.equal(get.status, 308);
    assert.equal(get.headers.location, 'https://gw.example:8443/s?x=1');
    const up = await rawExchange(door.ports[1], upgradeRequest('/s', [], 'gw.example'));
    assert.equal(up.status, 308);
    assert.equal(up.headers.location, 'https://gw.example:8443/s');
    const bad = await rawExchange(door.ports[1], 'GET / HTTP/1.1\r\nHost: a b\r\n\r\n');
    assert.equal(bad.status, 400);
  } finally {
    await door.stop();
  }
});
