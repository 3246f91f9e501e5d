import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import WebSocket from 'ws';
import { hashPassword } from '../../src/auth/passwords.js';

const MAIN = join(import.meta.dirname, '../../src/main.ts');

function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const exited = once(child, 'exit').then(([code]) => code as number);
  return { child, exited, out: () => out, err: () => err };
}

function tmpFile(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cli-'));
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

test('check: a valid file exits 0', async () => {
  const f = tmpFile('ok.yaml', 'listen:\n  - port: 0\nservices:\n  echo:\n    path: /echo\n    type: echo\n');
  const r = run(['check', '--config', f]);
  assert.equal(await r.exited, 0);
  assert.match(r.out(), /ok \(1 services, 1 listeners\)/);
});

test('check: an invalid file exits 1 and names each bad key by path', async () => {
  const f = tmpFile('bad.yaml', 'services:\n  echo:\n    path: echo\n    type: echo\n    max_message: lots\n    colour: red\n');
  const r = run(['check', '--config', f]);
  assert.equal(await r.exited, 1);
  assert.match(r.err(), /services\.echo\.path \(line 3, column 5\):/);
  assert.match(r.err(), /services\.echo\.max_message \(line 5, column 5\): not a size/);
  assert.match(r.err(), /services\.echo \(line 6, column 5\): unknown key "colour"/);
});

test('check: every problem in one run, unset variables and schema alike, with "did you mean" for a near key', async () => {
  const f = tmpFile('typos.yaml', 'listen:\n  - port: ${GH_TEST_UNSET_PORT}\nlimtis: {}\nservices:\n  echo:\n    path: /echo\n    type: echo\n    max_mesage: 1MiB\n');
  const r = run(['check', '--config', f]);
  assert.equal(await r.exited, 1);
  assert.match(r.err(), /listen\.0\.port \(line 2, column 5\): environment variable GH_TEST_UNSET_PORT is not set/);
  assert.match(r.err(), /\(root\) \(line 3, column 1\): unknown key "limtis" — did you mean "limits"\?/);
  assert.match(r.err(), /services\.echo \(line 8, column 5\): unknown key "max_mesage" — did you mean "max_message"\?/);
  assert.doesNotMatch(r.err(), /not a port number/, 'the unset variable is reported once, not again as a bad port');
});

test('schema: prints the JSON Schema of the configuration, as committed in gatehouse.schema.json', async () => {
  const r = run(['schema']);
  assert.equal(await r.exited, 0);
  const printed = JSON.parse(r.out()) as { $schema: string; properties: Record<string, unknown> };
  assert.equal(printed.$schema, 'http://json-schema.org/draft-07/schema#');
  assert.ok(printed.properties.services && printed.properties.admin);
  assert.deepEqual(printed, JSON.parse(readFileSync(join(import.meta.dirname, '../../gatehouse.schema.json'), 'utf8')));
});

test('check: a certificate that does not match its key is said in words', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cli-cert-'));
  for (const n of ['a', 'b']) {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', `/CN=${n}`, '-keyout', join(dir, `${n}.key`), '-out', join(dir, `${n}.pem`)], { stdio: 'ignore' });
  }
  const f = join(dir, 'tls.yaml');
  writeFileSync(f, `listen:\n  - port: 0\n    tls: { cert: ${join(dir, 'a.pem')}, key: ${join(dir, 'b.key')} }\n`);
  const r = run(['check', '--config', f]);
  assert.equal(await r.exited, 1);
  assert.match(r.err(), /the private key does not belong to this certificate/);
});

test('check: an unset ${ENV} reference is an error naming the key', async () => {
  const f = tmpFile('env.yaml', 'listen:\n  - port: ${GH_TEST_UNSET_PORT}\n');
  const r = run(['check', '--config', f]);
  assert.equal(await r.exited, 1);
  assert.match(r.err(), /listen\.0\.port \(line 2, column 5\): environment variable GH_TEST_UNSET_PORT is not set/);
});

/** A config whose every named file is usable: a TLS listener, a basic users file, a JWT key file. */
async function configWithFiles(dir: string): Promise<string> {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  writeFileSync(join(dir, 'users'), `alice:${await hashPassword('secret', 'scrypt')}\n`);
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  writeFileSync(join(dir, 'jwt.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
  return `listen:
  - port: 0
    tls: { cert: ${join(dir, 'cert.pem')}, key: ${join(dir, 'key.pem')} }
services:
  basic: { path: /basic, type: echo, auth: { methods: [{ type: basic, users_file: ${join(dir, 'users')} }] } }
  jwt: { path: /jwt, type: echo, auth: { methods: [{ type: jwt, issuers: [{ issuer: "https://issuer.test", audience: app, algorithms: [ES256], key_files: [${join(dir, 'jwt.pem')}] }] }] } }
`;
}

test('check: reads every file the config names; a config whose files are usable exits 0', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cli-files-'));
  const f = join(dir, 'ok.yaml');
  writeFileSync(f, await configWithFiles(dir));
  const r = run(['check', '--config', f]);
  assert.equal(await r.exited, 0, r.err());
  assert.match(r.out(), /ok \(2 services, 1 listeners\)/);
});

test('check: a missing users file and an unusable certificate are both named, exit 1; start refuses the same with one clean line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cli-files-'));
  const good = await configWithFiles(dir);
  writeFileSync(join(dir, 'cert.pem'), 'not a certificate\n');
  const f = join(dir, 'bad.yaml');
  writeFileSync(f, good.replace(join(dir, 'users'), join(dir, 'no-such-users')));
  const r = run(['check', '--config', f]);
  assert.equal(await r.exited, 1);
  assert.match(r.err(), /services: cannot read users file .*no-such-users/);
  assert.match(r.err(), new RegExp(`listen\\.0\\.tls: TLS certificate ${join(dir, 'cert.pem').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} cannot be used`));

  const started = run(['start', '--config', f]);
  assert.equal(await started.exited, 1);
  assert.match(started.err(), /^gatehouse: cannot read users file .*no-such-users/m);
  assert.doesNotMatch(started.err(), /\n\s+at /, 'no stack trace');
});

test('start: serves echo on the built-in default config; SIGTERM closes clients with 1001 and exits', async () => {
  // GATEHOUSE_PORT=0 is not useful to find the port, so pick one from the stderr line.
  const r = run(['start'], { GATEHOUSE_PORT: '0', GATEHOUSE_ADMIN_PORT: '0' });
  const port = await new Promise<number>((resolve, reject) => {
    // Generous: tsx compiles the sources first, slow on a loaded machine; a stuck child is killed so the file ends.
    const t = setTimeout(() => { r.child.kill('SIGKILL'); reject(new Error(`no listening line: ${r.err()}`)); }, 60_000);
    r.child.stderr.on('data', () => {
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(r.err());
      if (m) { clearTimeout(t); resolve(Number(m[1])); }
    });
  });
  const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`, { headers: { origin: `http://127.0.0.1:${port}` } });
  await once(ws, 'open');
  ws.send('hello');
  const [msg] = await once(ws, 'message');
  assert.equal(String(msg), 'hello');
  const closed = once(ws, 'close');
  r.child.kill('SIGTERM');
  const [code] = await closed;
  assert.equal(code, 1001);
  assert.equal(await r.exited, 0);
});

test('the gatehouse executable starts Node with the flags on its first line (young generation capped)', async () => {
  const bin = join(import.meta.dirname, '../../bin/gatehouse.js');
  assert.ok(existsSync(join(import.meta.dirname, '../../dist/main.js')), 'dist/ is missing: npm run build (npm ci runs it)');
  const firstLine = readFileSync(bin, 'utf8').split('\n', 1)[0];
  assert.match(firstLine, /^#!\/usr\/bin\/env -S node .*--max-semi-space-size=\d+/);
  // Run the file itself, as `gatehouse` and `npm start` do: the kernel reads that line.
  const child = spawn(bin, ['start'], { env: { ...process.env, GATEHOUSE_PORT: '0', GATEHOUSE_ADMIN_PORT: '0' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const exited = once(child, 'exit').then(([code]) => code as number);
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`no listening line: ${err}`)); }, 60_000);
    child.stderr.on('data', () => { if (/listening on/.test(err)) { clearTimeout(t); resolve(); } });
  });
  const argv = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
  assert.ok(argv.includes(/--max-semi-space-size=\d+/.exec(firstLine)![0]), `node ran without the flag: ${argv.join(' ')}`);
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});
