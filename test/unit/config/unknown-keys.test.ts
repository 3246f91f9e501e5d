/**
 * Unknown keys are refused, never dropped, in every section of the
 * configuration: a typo such as `authorize: { role: [admin] }` must not load
 * as an empty rule (which would admit every authenticated user). The table is
 * made by walking a configuration that uses every section and putting a
 * made-up key into each object in turn; maps whose keys are names (services,
 * roles per user, claims, extra headers) are the only objects skipped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';

const SECRET = 'x'.repeat(32);

/** Every section of the configuration, each with a valid value. */
function everySection(): Record<string, unknown> {
  return {
    listen: [
      {
        host: '127.0.0.1', port: 8443, hosts: ['gw.example.com'], proxy_protocol: false,
        tls: { cert: '/c.pem', key: '/k.pem', ca: '/ca.pem', client_certificate: 'optional', sni: [{ servername: 'a.example.com', cert: '/a.pem', key: '/a.key' }] },
        hsts: { max_age: 600 },
      },
      { host: '127.0.0.1', port: 8080, redirect_http: { port: 8443 } },
    ],
    trusted_proxies: ['10.0.0.0/8'],
    forwarded_header: 'x-forwarded-for',
    index_page: true,
    limits: { header_bytes: '16KiB', message_rate: 100 },
    websocket: { ping_interval: '25s' },
    log: { level: 'info' },
    shutdown: { drain_timeout: '30s' },
    fallback: { session_timeout: '30s' },
    workers: 2,
    cluster: { redis: { sentinels: ['10.0.0.1:26379'], name: 'gh' }, secret: SECRET, hop: { host: '10.0.0.5' } },
    auth: { failures: { per_address: 10 }, tickets: { ttl: '30s', hmac_keys: [SECRET] } },
    services: {
      echo: {
        path: '/echo', type: 'echo', origins: ['https://app.example.com'],
        auth: {
          methods: [
            { type: 'jwt', issuers: [{ issuer: 'https://login.example.com/', audience: 'echo', algorithms: ['HS256'], secret: SECRET }] },
            { type: 'basic', users_file: '/users', roles: { alice: ['admin'] } },
            { type: 'forward', url: 'http://127.0.0.1:3000/check', headers: { 'x-secret': 'y' } },
            { type: 'ticket' },
          ],
        },
        authorize: { roles: ['admin'], claims: { tenant: 'acme' } },
        identity: { mode: 'headers' },
      },
      tcp: { path: '/tcp', type: 'tcp', backend: 'tls://127.0.0.1:5901', tls: { ca: '/ca.pem' } },
      ws: { path: '/ws', type: 'websocket', backend: 'ws://127.0.0.1:9000/', backend_protocols: ['chat'] },
    },
  };
}

/** Objects whose keys are names chosen by the operator, not schema keys. */
const NAME_MAPS = [/^services$/, /\.roles$/, /\.claims$/, /\.headers$/];

/** Dotted paths of every plain object in `value`, the root included (as ''). */
function objectPaths(value: unknown, path: string[] = []): string[][] {
  if (Array.isArray(value)) return value.flatMap((v, i) => objectPaths(v, [...path, String(i)]));
  if (value === null || typeof value !== 'object') return [];
  const here = NAME_MAPS.some((re) => re.test(path.join('.'))) ? [] : [path];
  return [...here, ...Object.entries(value).flatMap(([k, v]) => objectPaths(v, [...path, k]))];
}

function withKey(config: Record<string, unknown>, path: string[], key: string): Record<string, unknown> {
  const copy = structuredClone(config);
  let node: Record<string, unknown> = copy;
  for (const p of path) node = node[p] as Record<string, unknown>;
  node[key] = 1;
  return copy;
}

function issuesOf(raw: unknown): string[] {
  try {
    parseConfig(raw, {});
  } catch (err) {
    assert.ok(err instanceof ConfigError, `a ConfigError, not ${String(err)}`);
    return err.issues;
  }
  return [];
}

test('the fixture uses every section and is itself valid', () => {
  assert.deepEqual(issuesOf(everySection()), [], 'the configuration with every section loads');
  const paths = objectPaths(everySection()).map((p) => p.join('.'));
  for (const section of ['', 'limits', 'services.echo.authorize', 'services.echo.auth.methods.0.issuers.0', 'listen.0.tls.sni.0', 'auth.failures', 'fallback', 'cluster.hop', 'cluster.redis']) {
    assert.ok(paths.includes(section), `the table covers ${section || '(root)'}`);
  }
});

test('a made-up key in any section is refused with its path', () => {
  const config = everySection();
  const paths = objectPaths(config);
  assert.ok(paths.length >= 25, `the table has a row per section (${paths.length})`);
  for (const path of paths) {
    const where = path.length === 0 ? '(root)' : path.join('.');
    const issues = issuesOf(withKey(config, path, 'made_up_key'));
    assert.ok(issues.includes(`${where}: unknown key "made_up_key"`), `${where}: the made-up key is refused, got ${JSON.stringify(issues)}`);
  }
});

test('a typo in authorize is refused, not read as "no rule"', () => {
  const config = everySection();
  (config.services as Record<string, Record<string, unknown>>).echo.authorize = { role: ['admin'] };
  assert.deepEqual(issuesOf(config), ['services.echo.authorize: unknown key "role" — did you mean "roles"?'], 'authorize.role (for roles) is an error');
});
