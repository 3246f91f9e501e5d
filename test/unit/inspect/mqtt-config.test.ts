/**
 * The `inspect.mqtt` schema: documented defaults, filter and placeholder
 * syntax refused with a clear message, a client id prefix that cannot map
 * two principals to one id.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mqttInspectSchema } from '../../../src/config/inspect-mqtt.js';
import { parseConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';

const problems = (input: unknown): string[] => {
  const r = mqttInspectSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('inspect.mqtt config', () => {
  it('has the documented defaults', () => {
    const c = mqttInspectSchema.parse({});
    assert.deepEqual([c.publish, c.subscribe, c.retain, c.max_qos, c.on_violation], [[], [], true, 2, 'refuse']);
    assert.deepEqual(c.limits, {
      max_packet: 1024 * 1024, max_connect_packet: 64 * 1024, connect_timeout: 10_000, topic_length: 1024, topic_levels: 32,
      properties: 32, properties_size: 8 * 1024, filters_per_packet: 32, subscriptions: 100, topic_aliases: 32,
    });
  });

  it('accepts filters with placeholders and refuses what is not a filter', () => {
    assert.deepEqual(problems({ publish: ['devices/{principal.id}/#', 'chat/{claims.room}', '+/status', '#', '$SYS/#'] }), []);
    for (const bad of ['a/#/b', 'a/b#', 'a+/b', '', '$share/g/a', 'devices/{principal.name}', 'x/${principal.id}']) {
      assert.ok(problems({ subscribe: [bad] }).length > 0, `${JSON.stringify(bad)} is refused`);
    }
  });

  it('share groups: one level\'s text with placeholders; none by default', () => {
    assert.deepEqual(mqttInspectSchema.parse({}).share_groups, []);
    assert.deepEqual(problems({ share_groups: ['{principal.id}', 'workers-{claims.team}', 'fixed'] }), []);
    for (const bad of ['a/b', 'g+', '#', '{principal.name}']) assert.ok(problems({ share_groups: [bad] }).length > 0, `${JSON.stringify(bad)} is refused`);
  });

  it('a client id prefix needs a separator after each placeholder; client_id and the prefix exclude each other', () => {
    assert.deepEqual(problems({ connect: { client_id_prefix: '{principal.id}-' } }), []);
    assert.match(problems({ connect: { client_id_prefix: 'x-{principal.id}' } })[0], /separator/);
    assert.match(problems({ connect: { client_id_prefix: '{principal.id}{claims.a}:' } })[0], /separator/);
    assert.ok(problems({ connect: { client_id: '{principal.id}', client_id_prefix: '{principal.id}-' } }).length > 0);
  });

  it('an inspected service leaves no subprotocol uninspected; mqttv3.1 is served when listed', () => {
    const service = (extra: object) => ({ services: { d: { path: '/d', type: 'tcp', backend: 'tcp://127.0.0.1:1883', inspect: { mqtt: {} }, ...extra } } });
    const issues = (extra: object): string[] => {
      try {
        parseConfig(service(extra), {});
        return [];
      } catch (err) {
        return (err as ConfigError).issues;
      }
    };
    assert.deepEqual(issues({ subprotocols: ['mqtt', 'mqttv3.1'], require_subprotocol: true }), []);
    assert.ok(issues({ subprotocols: ['mqtt'], require_subprotocol: false }).some((i) => i.includes('require_subprotocol')));
    assert.ok(issues({ subprotocols: ['mqtt', 'v12.stomp'], require_subprotocol: true }).some((i) => i.includes('v12.stomp')), 'STOMP without inspect.stomp would pass uninspected');
  });
});
