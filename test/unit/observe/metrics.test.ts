import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../../../src/observe/metrics.js';

test('a series taken once is what the exposition shows, with HELP and TYPE', { timeout: 10_000 }, async () => {
  const m = new Metrics({ process: false });
  const s = m.messages.series({ service: 'chat', direction: 'in' });
  s.value += 3;
  m.messages.inc({ service: 'chat', direction: 'out' }, 2);
  const text = await m.render();
  assert.match(text, /^# HELP gatehouse_messages_total .+$/m, 'HELP line');
  assert.match(text, /^# TYPE gatehouse_messages_total counter$/m, 'TYPE line');
  assert.match(text, /^gatehouse_messages_total\{service="chat",direction="in"\} 3$/m, 'the series value');
  assert.match(text, /^gatehouse_messages_total\{service="chat",direction="out"\} 2$/m, 'inc adds to the same family');
  s.value += 1;
  assert.match(await m.render(), /^gatehouse_messages_total\{service="chat",direction="in"\} 4$/m, 'read again at the next scrape');
});

test('get sums the series that carry the given labels', { timeout: 10_000 }, () => {
  const m = new Metrics({ process: false });
  m.connectionsOpen.inc({ service: 'a', transport: 'websocket' }, 2);
  m.connectionsOpen.inc({ service: 'a', transport: 'fallback' }, 1);
  m.connectionsOpen.inc({ service: 'b', transport: 'websocket' }, 5);
  assert.equal(m.get('gatehouse_connections_open', { service: 'a' }), 3);
  assert.equal(m.get('gatehouse_connections_open', { transport: 'websocket' }), 7);
  assert.equal(m.get('gatehouse_connections_open'), 8);
  assert.equal(m.get('gatehouse_no_such_metric'), 0);
});

test('a label the family does not have is a programming error, not a new series', { timeout: 10_000 }, () => {
  const m = new Metrics({ process: false });
  assert.throws(() => m.rejections.inc({ reason: 'x', client: '10.0.0.1' } as never), /has no label "client"/);
});

test('the generic inc makes a counter family once and keeps adding to it', { timeout: 10_000 }, async () => {
  const m = new Metrics({ process: false });
  m.inc('gatehouse_throttled_total', { limit: 'limits.message_rate' });
  m.inc('gatehouse_throttled_total', { limit: 'limits.message_rate' }, 2);
  assert.equal(m.get('gatehouse_throttled_total', { limit: 'limits.message_rate' }), 3);
  assert.match(await m.render(), /^# TYPE gatehouse_throttled_total counter$/m);
  const family = m.counterFamily('gatehouse_inspection_refusals_total', 'ignored: already registered', ['service', 'protocol', 'reason']);
  assert.equal(family, m.inspectionRefusals, 'asking again returns the same family');
});

test('the process metrics are included once, however many Metrics exist', { timeout: 10_000 }, async () => {
  const a = new Metrics();
  const b = new Metrics();
  const text = await b.render();
  assert.match(text, /^# TYPE process_cpu_seconds_total counter$/m, 'process metrics');
  assert.match(text, /^# TYPE nodejs_eventloop_lag_seconds gauge$/m, 'event-loop lag');
  assert.equal(a.registries[0], b.registries[0], 'one process registry');
});
