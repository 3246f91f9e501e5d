/**
 * The slow-consumer guard on fallback sessions: progress is bytes the client
 * acknowledged, not a queue that got smaller. A client that reads every echo
 * and acknowledges it a moment later always has one message unacknowledged at
 * the guard's sweep — it is healthy and must stay open; a client that stops
 * acknowledging is still closed 1008 after the stall timeout.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket as NodeWebSocket } from 'ws';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { ALLOWED, openSession, RawSession } from './raw.js';
import { FrameType } from '../../../src/fallback/wire.js';
import { GatehouseSocket } from '../../../client/src/index.js';

// Long enough that one step of the healthy client below (a send, its echo,
// the think time) stays well inside it on a loaded 2-core machine, where a
// step has been seen to take over 400 ms; the healthy tests still run for
// several stall timeouts, so a guard that judges by queue size closes them.
const STALL_MS = 1_500;
const THINK_MS = 150;

let gw: TestGateway;
before(async () => {
  gw = await startGateway({
    limits: { send_stall_timeout: `${STALL_MS}ms` },
    services: { echo: { path: '/echo', type: 'echo', origins: [ALLOWED] } },
  });
});
after(async () => { await gw.stop(); });

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('one message in flight, each echo acknowledged with the next request: the session stays open', { timeout: 30_000 }, async () => {
  const { sid } = await openSession(gw.httpUrl('/echo'), { Origin: ALLOWED });
  assert.ok(sid, 'session opened');
  const s = new RawSession(gw.httpUrl('/echo'), sid, { Origin: ALLOWED });
  // Every message is the same size, so every sweep sees the same queue size:
  // the one echo received but not yet acknowledged (the next poll acknowledges it).
  const steps = Math.ceil((STALL_MS * 3) / THINK_MS);
  for (let i = 0; i < steps; i++) {
    const res = await s.send([`message ${String(i).padStart(3, '0')}`]);
    assert.equal(res.status, 200, `send ${i} answered ${res.status}`);
    await res.arrayBuffer();
    const got = await s.receive(1);
    assert.equal(got[0].type, FrameType.TEXT, `step ${i}: expected the echo, got frame type ${got[0].type}`);
    assert.equal(got[0].payload.toString(), `message ${String(i).padStart(3, '0')}`);
    await pause(THINK_MS); // the client's think time, with the echo still unacknowledged
  }
  assert.ok(!gw.auditReasons().includes('slow_consumer'), `no slow_consumer audit: ${gw.auditReasons().join(', ')}`);
  assert.equal(await s.echo('still open'), 'still open');
});

test('a session that stops acknowledging is still closed 1008 slow consumer after the stall timeout', { timeout: 30_000 }, async () => {
  const before = gw.auditReasons().filter((r) => r === 'slow_consumer').length;
  const { sid } = await openSession(gw.httpUrl('/echo'), { Origin: ALLOWED });
  assert.ok(sid, 'session opened');
  const s = new RawSession(gw.httpUrl('/echo'), sid, { Origin: ALLOWED });
  const res = await s.send(['never acknowledged']);
  await res.arrayBuffer();
  // Sends keep the session from idling out but acknowledge nothing downstream.
  const stop = s.keepAlive(100);
  try {
    for (let i = 0; i < 400 && gw.auditReasons().filter((r) => r === 'slow_consumer').length === before; i++) await pause(25);
  } finally { stop(); }
  const line = gw.logs.filter((l) => l.audit && l.reason === 'slow_consumer').at(-1);
  assert.ok(line, 'slow consumer audited');
  assert.match(String(line.detail), new RegExp(`no progress for ${STALL_MS} ms`));
  assert.equal(line.code, 1008);
});

test('client library, fallback forced, one message in flight with pauses: every echo arrives, no close', { timeout: 30_000 }, async () => {
  const s = new GatehouseSocket(gw.url('/echo'), [], { transport: 'fallback', WebSocket: NodeWebSocket as never, headers: { Origin: ALLOWED } });
  let closed: { code: number; reason: string } | undefined;
  s.onclose = (e) => { closed = { code: e.code, reason: e.reason }; };
  await new Promise<void>((resolve, reject) => { s.onopen = () => resolve(); s.onerror = () => reject(new Error('open failed')); });
  const inbox: string[] = [];
  let wake: (() => void) | undefined;
  s.onmessage = (e) => { inbox.push(String(e.data)); wake?.(); };
  for (let i = 0; i < 8; i++) {
    s.send(`m${i}`);
    while (inbox.length <= i && !closed) await new Promise<void>((r) => { wake = r; setTimeout(r, 1000); });
    assert.equal(closed, undefined, `closed after ${i} messages: ${JSON.stringify(closed)}`);
    assert.equal(inbox[i], `m${i}`);
    await pause(STALL_MS / 2);
  }
  assert.equal(closed, undefined);
  s.close(1000);
});
