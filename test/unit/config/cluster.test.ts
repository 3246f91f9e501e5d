/**
 * The scaling keys (issue 20, item 1 and 2): `workers` defaults to 1, so an
 * existing configuration still runs as one process; `auto` is the cores Node
 * may use; a count that is not a positive whole number, a Redis address that
 * is not redis:// or rediss://, and a hop secret shorter than 32 characters
 * are refused by name before anything starts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { parseConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';
import { roleOf, workerCount } from '../../../src/start.js';

const SECRET = 'x'.repeat(32);
const SERVICES = { echo: { path: '/echo', type: 'echo' } };

function issuesOf(raw: Record<string, unknown>): string[] {
  try {
    parseConfig({ services: SERVICES, ...raw }, {});
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.issues;
  }
  return assert.fail(`expected a ConfigError for ${JSON.stringify(raw)}`);
}

test('without workers: one process, as before', () => {
  const config = parseConfig({ services: SERVICES }, {});
  assert.equal(config.workers, 1);
  assert.equal(workerCount(config), 1);
  assert.equal(roleOf(config), 'single');
  assert.equal(config.cluster, undefined, 'no Redis unless configured');
});

test('workers: auto is the cores Node may use; a number is taken as it is', () => {
  const auto = parseConfig({ services: SERVICES, workers: 'auto' }, {});
  assert.equal(workerCount(auto), availableParallelism());
  const four = parseConfig({ services: SERVICES, workers: 4 }, {});
  assert.equal(workerCount(four), 4);
  assert.equal(roleOf(four), 'primary');
});

test('a worker count that is not a positive whole number is refused by name', () => {
  for (const workers of [0, -1, 1.5, 'all', '2', 257]) {
    const issues = issuesOf({ workers });
    assert.ok(issues.some((i) => i.startsWith('workers')), `workers: ${JSON.stringify(workers)} → ${issues.join('; ')}`);
  }
});

test('cluster: Redis as a URL, Sentinels or Cluster nodes; defaults for the rest', () => {
  const url = parseConfig({ services: SERVICES, cluster: { redis: 'rediss://redis.internal:6380/2', secret: SECRET } }, {});
  assert.deepEqual({ ...url.cluster, secret: undefined }, {
    redis: 'rediss://redis.internal:6380/2', key_prefix: 'gatehouse:', secret: undefined,
    hop: { host: '127.0.0.1', port: 0 }, redis_timeout: 1000,
  });
  const sentinels = parseConfig({ services: SERVICES, cluster: { redis: { sentinels: ['10.0.0.1:26379', '[::1]:26379'], name: 'gh' }, secret: SECRET } }, {});
  assert.deepEqual(sentinels.cluster?.redis, { sentinels: ['10.0.0.1:26379', '[::1]:26379'], name: 'gh', db: 0, tls: false });
  const nodes = parseConfig({ services: SERVICES, cluster: { redis: { nodes: ['10.0.0.1:7000'] }, secret: SECRET } }, {});
  assert.deepEqual(nodes.cluster?.redis, { nodes: ['10.0.0.1:7000'], tls: false });
});

test('cluster: a Redis that is not redis:// or rediss://, a short secret, a bad prefix or timeout are refused by name', () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ redis: 'http://redis.internal:6379', secret: SECRET }, 'cluster.redis'],
    [{ redis: 'not a url', secret: SECRET }, 'cluster.redis'],
    [{ redis: { sentinels: ['no-port'], name: 'gh' }, secret: SECRET }, 'cluster.redis'],
    [{ redis: 'redis://r:6379/0', secret: 'short' }, 'cluster.secret'],
    [{ redis: 'redis://r:6379/0' }, 'cluster.secret'],
    [{ redis: 'redis://r:6379/0', secret: SECRET, key_prefix: 'a b' }, 'cluster.key_prefix'],
    [{ redis: 'redis://r:6379/0', secret: SECRET, redis_timeout: '0s' }, 'cluster.redis_timeout'],
    [{ redis: 'redis://r:6379/0', secret: SECRET, hop: { port: 70000 } }, 'cluster.hop.port'],
  ];
  for (const [cluster, key] of cases) {
    const issues = issuesOf({ cluster });
    assert.ok(issues.some((i) => i.startsWith(key)), `${JSON.stringify(cluster)} → ${issues.join('; ')}`);
  }
});
