/**
 * deploy/: the systemd unit passes `systemd-analyze verify` (where systemd's
 * tools exist), its hardening is in place, the Dockerfile runs as a non-root
 * user with a health check on /readyz, and the example config they mount passes `gatehouse check`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const DEPLOY = join(import.meta.dirname, '../../deploy');
const MAIN = join(import.meta.dirname, '../../src/main.ts');
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';

test('the systemd unit passes systemd-analyze verify', { skip: existsSync(SYSTEMD_ANALYZE) ? false : 'systemd-analyze is not installed here', timeout: 30_000 }, () => {
  const r = spawnSync(SYSTEMD_ANALYZE, ['verify', join(DEPLOY, 'gatehouse.service')], { encoding: 'utf8' });
  // Warnings about this machine (no gatehouse binary or user here) are not about the unit's syntax.
  const problems = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() !== '' && !/Command .* is not executable|No such file|user .* not found/i.test(l));
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(problems, []);
});

test('the systemd unit runs unprivileged and hardened', () => {
  const unit = readFileSync(join(DEPLOY, 'gatehouse.service'), 'utf8');
  for (const line of ['User=gatehouse', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateTmp=yes',
    'CapabilityBoundingSet=CAP_NET_BIND_SERVICE', 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX', 'ExecReload=/bin/kill -HUP $MAINPID']) {
    assert.ok(unit.split('\n').includes(line), `unit has ${line}`);
  }
});

test('the Dockerfile runs as a non-root user, reads the config as a mounted file and checks /readyz', () => {
  const df = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
  const final = df.slice(df.lastIndexOf('\nFROM '));
  assert.match(final, /^USER node$/m, 'non-root in the final stage');
  assert.match(final, /^HEALTHCHECK .*\n?.*\/readyz/m, 'health check on /readyz');
  assert.match(final, /--config", "\/etc\/gatehouse\/gatehouse\.yaml"/, 'the config is a file under /etc/gatehouse');
  assert.match(df, /--read-only/, 'documented to run with a read-only root file system');
});

test('the config deploy/ mounts passes gatehouse check', { timeout: 30_000 }, () => {
  const out = execFileSync(process.execPath, ['--import', 'tsx', MAIN, 'check', '--config', join(DEPLOY, 'gatehouse.yaml')],
    { env: { ...process.env, ADMIN_TOKEN: 'a-test-admin-token-0123456789' }, encoding: 'utf8' });
  assert.match(out, /ok \(1 services, 1 listeners\)/);
});
