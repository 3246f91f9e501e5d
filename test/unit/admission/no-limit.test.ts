/**
 * One rule for every limit and rate key: 0 means "no limit" (issue 17, item 6).
 * Each key set to 0 lets through what its default refuses, through the real
 * pipeline and the real per-connection rates; each key left out keeps its
 * safe default, which still refuses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rejection, type Admission } from '../../../src/admission/types.js';
import { InboundRates, rateLimitsOf } from '../../../src/admission/inbound-rates.js';
import { DEFAULT_LIMITS } from '../../../src/config/limits.js';
import { parseConfig, servicesOf } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';
import { harness, request } from './harness.js';

const service = (extra: Record<string, unknown> = {}) => ({ path: '/d', type: 'echo', allow_missing_origin: true, ...extra });
const config = (limits: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  ({ listen: [{ port: 0 }], limits, services: { d: service(extra) } });

/** How many of `n` handshakes from one address (held open) are admitted; all released afterwards. */
async function admitted(raw: unknown, n: number, address = '192.0.2.1'): Promise<{ count: number; refusals: string[] }> {
  const h = harness(raw);
  const open: Admission[] = [];
  const refusals: string[] = [];
  for (let i = 0; i < n; i++) {
    const a = await h.pipeline.admit(request([], address), h.service('d'));
    if (a instanceof Rejection) refusals.push(a.reason);
    else open.push(a);
  }
  for (const a of open) a.release();
  return { count: open.length, refusals: [...new Set(refusals)] };
}

test('every limit and rate key accepts 0 and refuses a negative number, a parser\'s bound refuses 0; left out, each keeps its default', () => {
  const limitKeys = ['handshake_rate', 'handshake_burst', 'connections_per_address', 'connections_total', 'message_rate', 'byte_rate',
    'control_rate', 'send_buffer'] as const;
  for (const key of limitKeys) {
    assert.equal(parseConfig(config({ [key]: 0 }), {}).limits[key], 0, `limits.${key}: 0 accepted`);
    assert.throws(() => parseConfig(config({ [key]: -1 }), {}), (err: unknown) => err instanceof ConfigError && err.issues.join('\n').includes(`limits.${key}`),
      `limits.${key}: -1 refused`);
  }
  for (const key of ['header_bytes', 'request_line_bytes', 'header_line_bytes', 'header_count']) {
    assert.throws(() => parseConfig(config({ [key]: 0 }), {}), (err: unknown) => err instanceof ConfigError && err.issues.join('\n').includes(`limits.${key}`),
      `limits.${key}: a parser's bound, 0 refused`);
  }
  for (const key of ['max_message', 'max_frame', 'max_fragments']) {
    assert.throws(() => parseConfig(config({}, { [key]: 0 }), {}), (err: unknown) => err instanceof ConfigError && err.issues.join('\n').includes(`services.d.${key}`),
      `services.d.${key}: a parser's bound, 0 refused`);
  }
  const defaults = parseConfig(config({}), {}).limits;
  assert.deepEqual(limitKeys.map((k) => defaults[k]), [20, 50, 256, 10_000, 100, 1024 * 1024, 10, 1024 * 1024], 'the safe defaults');
  for (const key of ['max_connections', 'message_rate', 'byte_rate'] as const) {
    assert.equal(parseConfig(config({}, { [key]: 0 }), {}).services.d[key], 0, `services.d.${key}: 0 accepted`);
    assert.equal(parseConfig(config({}), {}).services.d[key], undefined, `services.d.${key}: absent, the gateway's limit applies`);
  }
  const auth = parseConfig({ ...config({}), auth: { failures: { per_address: 0, per_user: 0 }, tickets: { per_principal: 0 } } }, {}).auth;
  assert.deepEqual([auth.failures.per_address, auth.failures.per_user, auth.tickets.per_principal], [0, 0, 0], 'auth limits: 0 accepted');
  const authDefaults = parseConfig(config({}), {}).auth;
  assert.deepEqual([authDefaults.failures.per_address, authDefaults.failures.per_user, authDefaults.tickets.per_principal], [10, 10, 10]);
  assert.equal(parseConfig({ ...config({}), log: { bad_input_per_second: 0 } }, {}).log.bad_input_per_second, 0, 'log.bad_input_per_second: 0 accepted');
  assert.equal(parseConfig(config({}), {}).log.bad_input_per_second, 20);
});

test('handshake_rate or handshake_burst 0: handshakes from one address are not limited; left out, the defaults refuse', { timeout: 30_000 }, async () => {
  const held = { connections_per_address: 0 };
  for (const key of ['handshake_rate', 'handshake_burst']) {
    const r = await admitted(config({ ...held, [key]: 0 }), 300);
    assert.deepEqual([r.count, r.refusals], [300, []], `${key}: 0`);
  }
  // The bucket refills 20 a second while the loop runs: 1,000 handshakes would need 47 s to pass, so some are refused however slow the machine.
  const r = await admitted(config(held), 1000);
  assert.deepEqual(r.refusals, ['handshake_rate'], 'defaults: refused by the rate');
  assert.ok(r.count >= 50 && r.count < 1000, `defaults: the burst of 50 and what the rate refilled passed (${r.count})`);
});

test('connections_per_address, connections_total and max_connections 0: not limited; left out, the defaults refuse', { timeout: 30_000 }, async () => {
  const fast = { handshake_rate: 0 };
  const perAddress = await admitted(config({ ...fast, connections_per_address: 0 }, { max_connections: 0 }), 300);
  assert.deepEqual([perAddress.count, perAddress.refusals], [300, []], 'connections_per_address and max_connections 0: 300 from one address');
  const byDefault = await admitted(config(fast), 300);
  assert.deepEqual([byDefault.count, byDefault.refusals], [256, ['too_many_connections']], 'defaults: 256 per address');
  const total = await admitted(config({ ...fast, connections_per_address: 0, connections_total: 0 }), 10_050);
  assert.deepEqual([total.count, total.refusals], [10_050, []], 'connections_total 0: past the default of 10,000');
  const totalByDefault = await admitted(config({ ...fast, connections_per_address: 0 }), 10_050);
  assert.deepEqual([totalByDefault.count, totalByDefault.refusals], [10_000, ['gateway_full']], 'defaults: 10,000 in all');
});

test('message_rate, byte_rate and control_rate 0: reading is never paused; left out, the defaults pause it', () => {
  const keys = { message_rate: 'limits.message_rate', byte_rate: 'limits.byte_rate', control_rate: 'limits.control_rate' };
  const rates = (messageRate: number, byteRate: number, controlRate: number) =>
    new InboundRates({ messageRate, byteRate, controlRate, burst: DEFAULT_LIMITS.rate_burst, keys }, 0);
  const unlimited = rates(0, 0, 0);
  for (let i = 0; i < 10_000; i++) {
    assert.equal(unlimited.data(true, 1 << 20, 0), 0, `message ${i} of 1 MiB at one instant: not paused`);
    assert.equal(unlimited.controlFrame(125, 0), 0, `ping ${i} at one instant: not paused`);
  }
  const d = DEFAULT_LIMITS;
  const messages = rates(d.message_rate, 0, 0);
  let n = 0;
  while (messages.data(true, 1, 0) === 0 && n < 10_000) n++;
  assert.equal(n, d.message_rate * d.rate_burst - 1, 'message_rate alone still pauses at its burst');
  assert.ok(rates(0, d.byte_rate, 0).data(true, d.byte_rate * d.rate_burst + 1, 0) > 0, 'byte_rate alone still pauses');
  const control = rates(0, 0, d.control_rate);
  n = 0;
  while (control.controlFrame(2, 0) === 0 && n < 10_000) n++;
  assert.equal(n, d.control_rate * d.rate_burst - 1, 'control_rate alone still pauses at its burst');
});

test('a service\'s message_rate or byte_rate 0 lifts the gateway\'s rate for it; limits.byte_rate 0 is not raised to max_message', () => {
  const ratesOf = (limits: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    const c = parseConfig(config(limits, extra), {});
    return rateLimitsOf(servicesOf(c)[0], c.limits);
  };
  const own = ratesOf({}, { message_rate: 0, byte_rate: 0 });
  assert.deepEqual([own.messageRate, own.byteRate], [0, 0], 'the service\'s 0 overrides the gateway\'s limits');
  const gateway = ratesOf({ message_rate: 0, byte_rate: 0, control_rate: 0 });
  assert.deepEqual([gateway.messageRate, gateway.byteRate, gateway.controlRate], [0, 0, 0], 'the gateway\'s 0 stays 0 (max_message does not raise it)');
  const defaults = ratesOf({});
  assert.deepEqual([defaults.messageRate, defaults.byteRate, defaults.controlRate], [100, 1024 * 1024, 10], 'left out: the defaults');
  const rates = new InboundRates(own, 0);
  for (let i = 0; i < 1000; i++) assert.equal(rates.data(true, 1 << 20, 0), 0, `message ${i}: the service's connections are not paused`);
});
