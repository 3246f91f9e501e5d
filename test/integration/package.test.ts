/**
 * Packaging: `npm pack` gives a tarball that installs globally (into a
 * temporary prefix here) and runs `gatehouse check|schema` from any
 * directory; the client library is a package of its own whose name, exports,
 * types and browser bundle resolve. Uses the dist/ that `npm ci` built.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '../..');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
let work: string;

function npm(args: string[], cwd: string): string {
  return execFileSync(NPM, [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } });
}

function pack(dir: string): string {
  const out = JSON.parse(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', work], dir)) as Array<{ filename: string; files: Array<{ path: string }> }>;
  return join(work, out[0].filename);
}

before(() => {
  assert.ok(existsSync(join(ROOT, 'dist/main.js')) && existsSync(join(ROOT, 'dashboard/dist/dashboard.js')) && existsSync(join(ROOT, 'client/dist/index.d.ts')),
    'dist/ is missing: npm run build (npm ci runs it)');
  work = mkdtempSync(join(tmpdir(), 'gh-pack-'));
});

test('the gateway tarball installs globally and runs check, schema and --version from another directory', { timeout: 240_000 }, () => {
  const tgz = pack(ROOT);
  assert.match(tgz, /gatehouse-gateway-\d+\.\d+\.\d+\.tgz$/);
  const prefix = join(work, 'prefix');
  npm(['install', '-g', '--prefix', prefix, '--prefer-offline', tgz], work);
  const bin = join(prefix, 'bin', 'gatehouse');
  const elsewhere = mkdtempSync(join(tmpdir(), 'gh-elsewhere-'));
  writeFileSync(join(elsewhere, 'gatehouse.yaml'), 'listen: [{ port: 0 }]\nservices:\n  echo: { path: /echo, type: echo }\n');
  const checked = execFileSync(bin, ['check', '--config', 'gatehouse.yaml'], { cwd: elsewhere, encoding: 'utf8' });
  assert.match(checked, /ok \(1 services, 1 listeners\)/);
  const schema = JSON.parse(execFileSync(bin, ['schema'], { cwd: elsewhere, encoding: 'utf8' })) as { properties: object };
  assert.ok('services' in schema.properties);
  assert.match(execFileSync(bin, ['--version'], { cwd: elsewhere, encoding: 'utf8' }), /^\d+\.\d+\.\d+/);
  const installed = join(prefix, 'lib', 'node_modules', 'gatehouse-gateway');
  for (const f of ['dashboard/dist/dashboard.js', 'dashboard/dist/index.html', 'client/dist/gatehouse.js', 'dist/main.js']) {
    assert.ok(existsSync(join(installed, f)), `the package carries ${f}`);
  }
  assert.ok(!existsSync(join(installed, 'node_modules', 'uplot')), 'build-time dependencies are not installed');
});

test('the client library is its own package: name, ESM with types, and the browser bundle resolve', { timeout: 120_000 }, () => {
  const tgz = pack(join(ROOT, 'client'));
  assert.match(tgz, /gatehouse-gateway-client-\d+\.\d+\.\d+\.tgz$/);
  const app = join(work, 'app');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), '{ "name": "app", "private": true, "type": "module" }\n');
  npm(['install', '--prefer-offline', tgz], app);
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', `
    import { GatehouseSocket } from 'gatehouse-gateway-client';
    import { createRequire } from 'node:module';
    const require = createRequire(import.meta.url);
    const pkg = require('gatehouse-gateway-client/package.json');
    console.log(typeof GatehouseSocket, pkg.types, require.resolve('gatehouse-gateway-client/bundle'));
  `], { cwd: app, encoding: 'utf8' });
  const [kind, types, bundle] = out.trim().split(' ');
  assert.equal(kind, 'function');
  assert.ok(existsSync(join(app, 'node_modules/gatehouse-gateway-client', types)), 'the types file is in the package');
  assert.match(bundle, /gatehouse-gateway-client\/dist\/gatehouse\.js$/);
  assert.ok(readdirSync(join(app, 'node_modules/gatehouse-gateway-client/dist')).includes('index.d.ts'));
});
