/**
 * The pub/sub bus on a real Redis through an outage: Redis is stopped and
 * started again on its port. A channel subscribed before the outage and one
 * whose first subscriber came while Redis was away both carry messages once
 * Redis is back (ioredis alone re-subscribes only the channels Redis had
 * confirmed); publishing during the outage fails, so the publisher knows.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { connectRedis, ready, type RedisClient } from '../../../src/cluster/redis.js';
import { RedisBus } from '../../../src/cluster/redis-bus.js';
import { parseConfig } from '../../../src/config/load.js';
import { startRedis, type Redis } from '../../helpers/redis.js';

let redis: Redis;
const clients: RedisClient[] = [];

function bus(): RedisBus {
  const config = parseConfig({
    cluster: { redis: redis.url, secret: randomBytes(24).toString('hex'), redis_timeout: '300ms' },
    services: { live: { path: '/live', type: 'pubsub', pubsub: { subscribe: ['*'], publish: ['*'] } } },
  }, {});
  const [publisher, subscriber] = [connectRedis(config.cluster!), connectRedis(config.cluster!)];
  for (const c of [publisher, subscriber]) { c.on('error', () => undefined); clients.push(c); }
  return new RedisBus(publisher, subscriber, config.cluster!.key_prefix);
}

async function until(what: string, deadline: number, pred: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await pred())) {
    assert.ok(Date.now() < deadline, `timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => { redis = await startRedis(); });
after(async () => {
  for (const c of clients) c.disconnect();
  await redis?.stop();
});

test('a channel subscribed while Redis was away carries messages once it is back', { timeout: 30_000 }, async () => {
  const [publishing, listening] = [bus(), bus()];
  const deadline = Date.now() + 25_000;
  await until('the clients are connected', deadline, () => clients.every((c) => ready(c)));
  const inbox: string[] = [];
  listening.subscribe('before', (m) => inbox.push(`before:${m}`));
  await until('the subscription before the outage works', deadline, async () => {
    await publishing.publish('before', 'one');
    return inbox.includes('before:one');
  });

  const port = redis.port;
  await redis.stop();
  await until('the clients see Redis gone', deadline, () => clients.every((c) => !ready(c)));
  await assert.rejects(Promise.resolve(publishing.publish('before', 'lost')), 'a publish while Redis is away fails');
  listening.subscribe('during', (m) => inbox.push(`during:${m}`));
  // The SUBSCRIBE is refused while the connection is down (ioredis gives up on it after one retry).
  await new Promise((r) => setTimeout(r, 500));

  redis = await startRedis({ port });
  await until('the clients are back', deadline, () => clients.every((c) => ready(c)));
  await until('the channel subscribed before the outage carries messages again', deadline, async () => {
    await publishing.publish('before', 'two');
    return inbox.includes('before:two');
  });
  await until('the channel subscribed during the outage carries messages', deadline, async () => {
    await publishing.publish('during', 'three');
    return inbox.includes('during:three');
  });
  assert.ok(!inbox.some((m) => m.endsWith(':lost')), 'nothing published during the outage arrives later');
});
