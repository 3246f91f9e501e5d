/**
 * A fleet behind a real HAProxy 2.6 doing plain round robin, no stickiness:
 * "machine A" is one `gatehouse start` with `workers: 2`, "machine B" another
 * with one process — three gateway processes on their own ports, sharing a
 * real Redis (`cluster.redis`). Every request may reach any of them; HAProxy
 * alternates A and B, and A's primary alternates its workers.
 *
 * Through HAProxy: the client library's fallback, streaming and long-polling,
 * exchanges 10,000 sequenced messages with none lost or reordered, its
 * requests landing on every process and passed on to the session's owner;
 * so does its WebSocket transport (one connection: one process); a ticket
 * used through one process is refused through the others; the per-address
 * limits (open connections, handshake rate) hold across them; a publish
 * reaches subscribers on every process; killing one machine closes only its
 * own clients, which reconnect through HAProxy to the other (an address whose
 * quota was on the dead one as soon as its slots stop counting), and a
 * fallback session it owned ends with 1006. A fallback session goes on while
 * Redis is frozen for longer than the processes cache where its owner takes
 * hops.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { mintTicket } from '../../../src/auth/ticket.js';
import { startGatewayProcess, type GatewayProcess } from '../services/helpers/gateway-process.js';
import { connect, type Outcome } from '../auth/common.js';
import { startRedis, type Redis } from '../../helpers/redis.js';
import { startHaproxy, type Haproxy } from '../../helpers/haproxy.js';
import { GatehouseSocket, type GatehouseCloseEvent, type GatehouseErrorEvent, type GatehouseMessageEvent } from '../../../client/src/index.js';

const KEY = randomBytes(32).toString('hex');
const SECRET = randomBytes(24).toString('hex');
const ADMIN_TOKEN = randomBytes(16).toString('hex');
// One bucket per client address for the fleet: BURST handshakes at once, then RATE a second.
// Each test uses addresses of its own; 127.0.0.1 opens at most a dozen sessions in the file.
const RATE = 1;
const BURST = 40;
let redis: Redis;
let machineA: GatewayProcess;
let machineB: GatewayProcess;
let lb: Haproxy;
let adminA = '';
let adminB = '';

const config = (workers: number, admin: string): string => `
workers: ${workers}
listen: [{ host: 127.0.0.1, port: 0 }]
log: { level: info }
${admin}
trusted_proxies: [127.0.0.1]
cluster: { redis: "${redis.url}", secret: "${SECRET}", redis_timeout: 2s }
limits: { handshake_rate: ${RATE}, handshake_burst: ${BURST}, connections_per_address: 3, message_rate: 100000 }
auth: { tickets: { hmac_keys: ["${KEY}"] } }
services:
  echo: { path: /echo, type: echo, allow_missing_origin: true }
  chat:
    path: /chat
    type: echo
    allow_missing_origin: true
    auth: { methods: [{ type: ticket }] }
  live: { path: /live, type: pubsub, allow_missing_origin: true, pubsub: { subscribe: ["news.*"], publish: ["news.*"] } }
`;

const ADMIN = `admin: { host: 127.0.0.1, port: 0, token: "${ADMIN_TOKEN}" }`;

/** The admin listener's address (with workers: the primary's, whose /metrics sums them). */
async function adminOf(gw: GatewayProcess): Promise<string> {
  const pattern = /admin on (http:\/\/[\d.:]+)/;
  return (pattern.exec(gw.output()) ?? await gw.waitFor(pattern, 30_000))[1];
}

function pidsOf(gw: GatewayProcess): number[] {
  const line = gw.output().split('\n').find((l) => l.includes('"msg":"workers listening"'));
  return line ? (JSON.parse(line) as { pids: number[] }).pids : [];
}

before(async () => {
  redis = await startRedis();
  const [a, b] = await Promise.allSettled([startGatewayProcess(config(2, ADMIN)), startGatewayProcess(config(1, ADMIN))]);
  // Kept even when the other failed to start, so that `after` stops it: a machine left running held the file (and the run) open.
  if (a.status === 'fulfilled') machineA = a.value;
  if (b.status === 'fulfilled') machineB = b.value;
  for (const s of [a, b]) if (s.status === 'rejected') throw s.reason;
  [adminA, adminB] = await Promise.all([adminOf(machineA), adminOf(machineB)]);
  // Every process of A takes hops once it says so: wait for both workers.
  while ((machineA.output().match(/taking fallback hops/g) ?? []).length < 2) await machineA.waitFor(/taking fallback hops/, 30_000);
  lb = await startHaproxy([{ port: machineA.port }, { port: machineB.port }], { options: ['option http-no-delay', 'option forwardfor', 'option redispatch', 'retries 2'] });
});
after(async () => {
  const workers = machineA ? pidsOf(machineA) : [];
  await lb?.stop();
  await machineA?.stop();
  await machineB?.stop();
  for (const pid of workers) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  await redis?.stop();
});

const status = (o: Outcome): number => {
  if (o.kind === 'open') { o.ws.terminate(); return 101; }
  return o.status;
};

function opened(s: GatehouseSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    s.onopen = () => resolve();
    s.onclose = (e) => reject(new Error(`closed ${e.code} before open`));
  });
}

/** Sends TOTAL numbered messages, WINDOW at a time, and resolves with what came back. */
async function exchangeSequenced(s: GatehouseSocket, total: number, window: number): Promise<string[]> {
  const got: string[] = [];
  let sent = 0;
  await new Promise<void>((resolve, reject) => {
    s.onmessage = (e: GatehouseMessageEvent) => {
      got.push(e.data as string);
      if (got.length === total) resolve();
      else if (got.length % window === 0) pump();
    };
    let why = '';
    s.onerror = (e) => { why = ` (${(e as GatehouseErrorEvent).message})`; };
    s.onclose = (e) => reject(new Error(`closed ${e.code} ${e.reason}${why} after ${got.length} messages`));
    const pump = (): void => { for (const end = Math.min(total, sent + window); sent < end; sent++) s.send(`m${sent}`); };
    pump();
  });
  return got;
}

/** Requests passed on to their session's owner by every process of both machines. */
async function hopsPassed(): Promise<number> {
  let sum = 0;
  for (const admin of [adminA, adminB]) {
    const metrics = await (await fetch(`${admin}/metrics`)).text();
    sum += Number(/gatehouse_fallback_hops_total\{outcome="passed"\} (\d+)/.exec(metrics)?.[1] ?? 0);
  }
  return sum;
}

for (const mode of ['stream', 'poll'] as const) {
  test(`the fallback (${mode}) through round robin: 10,000 sequenced messages, none lost or reordered, each request at any process`, { timeout: 180_000 }, async () => {
    const hopsBefore = await hopsPassed();
    const s = new GatehouseSocket(lb.url('/echo'), [], { transport: 'fallback', poll: mode === 'poll' });
    await opened(s);
    const got = await exchangeSequenced(s, 10_000, 200);
    const wrong = got.findIndex((m, i) => m !== `m${i}`);
    assert.equal(wrong, -1, `message ${wrong} is ${got[wrong]}: every message back once, in order`);
    assert.equal(s.fallbackMode, mode, `the session stayed in ${mode} mode`);
    const hops = await hopsPassed() - hopsBefore;
    assert.ok(hops > 0, `requests that reached another process were passed on to the session's owner (${hops})`);
    const closed = new Promise<GatehouseCloseEvent>((resolve) => { s.onclose = (e) => resolve(e); });
    s.close();
    assert.equal((await closed).code, 1000, 'closed cleanly, not before');
  });
}

test('the WebSocket transport through HAProxy: 10,000 sequenced messages, none lost or reordered', { timeout: 60_000 }, async () => {
  const s = new GatehouseSocket(lb.url('/echo'), [], { transport: 'websocket', WebSocket });
  await opened(s);
  assert.equal(s.transport, 'websocket');
  const got = await exchangeSequenced(s, 10_000, 200);
  const wrong = got.findIndex((m, i) => m !== `m${i}`);
  assert.equal(wrong, -1, `message ${wrong} is ${got[wrong]}: every message back once, in order`);
  const closed = new Promise<GatehouseCloseEvent>((resolve) => { s.onclose = (e) => resolve(e); });
  s.close();
  assert.equal((await closed).code, 1000, 'closed cleanly, not before');
});

test('a ticket used through one process is refused through every other', { timeout: 30_000 }, async () => {
  const ticket = mintTicket(KEY, { svc: 'chat', sub: 'erin', exp: Math.floor(Date.now() / 1000) + 30, jti: randomBytes(16).toString('base64url') });
  assert.equal(status(await connect(lb.url(`/chat?ticket=${ticket}`), { localAddress: '127.0.0.41' })), 101, 'first use');
  for (const [name, url] of [['through HAProxy', lb.url('/chat')], ['on A', machineA.url('/chat')], ['on B', machineB.url('/chat')], ['on A again', machineA.url('/chat')]]) {
    assert.equal(status(await connect(`${url}?ticket=${ticket}`, { localAddress: '127.0.0.41' })), 401, `replay ${name}`);
  }
});

test('the per-address limit holds across the processes', { timeout: 30_000 }, async () => {
  const from = { localAddress: '127.0.0.42' };
  const open: WebSocket[] = [];
  for (let i = 0; i < 3; i++) {
    const o = await connect(lb.url('/echo'), from);
    assert.equal(o.kind, 'open', `connection ${i} of 3`);
    if (o.kind === 'open') open.push(o.ws);
  }
  for (let i = 0; i < 3; i++) assert.equal(status(await connect(lb.url('/echo'), from)), 429, `one more is refused, whichever process it reaches (${i})`);
  for (const ws of open) ws.terminate();
});

test('the per-address handshake rate holds across the processes: one bucket for the fleet', { timeout: 120_000 }, async () => {
  // Refused at the ticket check (401) once the rate check let it through: nothing stays open.
  const from = { localAddress: '127.0.0.43' };
  const rateRefusal = (o: Outcome): boolean => o.kind === 'refused' && o.status === 429 && o.body.includes('too many handshakes');
  const started = Date.now();
  let passed = 0;
  let refused: Outcome | undefined;
  for (let i = 0; i < 4 * BURST && !refused; i++) {
    const o = await connect(lb.url('/chat'), from);
    if (rateRefusal(o)) refused = o;
    else { status(o); passed++; }
  }
  const seconds = (Date.now() - started) / 1000;
  assert.ok(refused, `a handshake was refused for its rate (after ${passed})`);
  assert.ok(refused.kind === 'refused' && Number(refused.headers['retry-after']) >= 1, 'with Retry-After');
  // Each process counting alone would let about twice BURST through before B's own bucket ran dry.
  const allowed = BURST + Math.ceil(seconds * RATE) + 1;
  assert.ok(passed >= BURST && passed <= allowed, `${passed} handshakes passed the rate check in ${seconds.toFixed(1)} s: one bucket allows ${BURST} to ${allowed}`);
});

test('a publish reaches the subscribers on every process of both machines', { timeout: 30_000 }, async () => {
  const P = 'gatehouse.pubsub.v1';
  const inboxes: string[][] = [];
  const sockets: WebSocket[] = [];
  // Two on A (one per worker: A's primary alternates them) and one on B.
  for (const url of [machineA.url('/live'), machineA.url('/live'), machineB.url('/live')]) {
    const o = await connect(url, { protocols: [P], localAddress: `127.0.0.${60 + sockets.length}` });
    assert.equal(o.kind, 'open');
    if (o.kind !== 'open') return;
    const inbox: string[] = [];
    o.ws.on('message', (d) => inbox.push(String(d)));
    inboxes.push(inbox);
    sockets.push(o.ws);
    o.ws.send(JSON.stringify({ type: 'subscribe', channel: 'news.fleet', id: 1 }));
  }
  const wait = async (pred: () => boolean): Promise<void> => { while (!pred()) await new Promise((r) => setTimeout(r, 20)); };
  await wait(() => inboxes.every((b) => b.some((m) => m.includes('"subscribed"'))));
  const pub = await connect(lb.url('/live'), { protocols: [P], localAddress: '127.0.0.63' });
  if (pub.kind === 'open') pub.ws.send(JSON.stringify({ type: 'publish', channel: 'news.fleet', data: 'through HAProxy' }));
  const res = await fetch(`${adminB}/api/publish`, {
    method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    body: JSON.stringify({ service: 'live', channel: 'news.fleet', data: 'from a backend' }),
  });
  assert.equal(res.status, 200, 'a backend publishes through the admin API');
  await wait(() => inboxes.every((b) => b.some((m) => m.includes('through HAProxy')) && b.some((m) => m.includes('from a backend'))));
  for (const ws of sockets) ws.terminate();
  if (pub.kind === 'open') pub.ws.terminate();
});

test('a fallback session goes on through a Redis outage longer than the owners\' addresses are cached', { timeout: 120_000 }, async () => {
  const s = new GatehouseSocket(lb.url('/echo'), [], { transport: 'fallback', retryTimeout: 60_000 });
  await opened(s);
  let closed: GatehouseCloseEvent | undefined;
  s.onclose = (e) => { closed = e; };
  const got: string[] = [];
  let sent = 0;
  const exchange = async (): Promise<void> => {
    const text = `m${sent++}`;
    await new Promise<void>((resolve, reject) => {
      s.onmessage = (e: GatehouseMessageEvent) => { got.push(e.data as string); resolve(); };
      s.onclose = (e) => { closed = e; reject(new Error(`closed ${e.code} ${e.reason} after ${got.length} messages`)); };
      s.send(text);
    });
  };
  // Before: every process learns where the owner takes hops (requests alternate over them).
  for (let i = 0; i < 20; i++) await exchange();
  redis.freeze();
  try {
    // Past the 5 s for which a process uses an owner's address before asking Redis again.
    const until = Date.now() + 7_000;
    while (Date.now() < until) await exchange();
  } finally {
    redis.thaw();
  }
  for (let i = 0; i < 5; i++) await exchange();
  assert.deepEqual(got, Array.from({ length: sent }, (_, i) => `m${i}`), 'every message back once, in order');
  assert.equal(closed, undefined, 'the session stayed open');
  s.close();
  // The next tests need Redis answering again: a ticket opens once it does.
  let code = 0;
  for (let i = 0; i < 50 && code !== 101; i++) {
    const ticket = mintTicket(KEY, { svc: 'chat', sub: 'fay', exp: Math.floor(Date.now() / 1000) + 30, jti: randomBytes(16).toString('base64url') });
    code = status(await connect(machineB.url(`/chat?ticket=${ticket}`), { localAddress: '127.0.0.44' }));
  }
  assert.equal(code, 101, 'tickets work again once Redis answers');
});

async function sessionsOnB(): Promise<number> {
  const text = await (await fetch(`${adminB}/metrics`)).text();
  return Number(/gatehouse_fallback_sessions\{service="echo"\} (\d+)/.exec(text)?.[1] ?? 0);
}

/** Sends `text` and resolves with whether it came back; a session that closes meanwhile fails the test with its code and reason, not by hanging. */
async function echoes(s: GatehouseSocket, text: string): Promise<boolean> {
  const onclose = s.onclose;
  let why = '';
  s.onerror = (e) => { why = ` (${(e as GatehouseErrorEvent).message})`; };
  try {
    return await new Promise<boolean>((resolve, reject) => {
      s.onmessage = (e: GatehouseMessageEvent) => resolve(e.data === text);
      s.onclose = (e) => { onclose?.call(s, e); reject(new Error(`the session closed ${e.code} ${e.reason}${why} before "${text}" came back`)); };
      s.send(text);
    });
  } finally {
    s.onclose = onclose;
  }
}

/** Opens through HAProxy from `localAddress`, trying again while refused with 429 (slots a dead process held still count). */
async function reopen(localAddress: string, deadline: number): Promise<WebSocket> {
  for (;;) {
    const o = await connect(lb.url('/echo'), { localAddress });
    if (o.kind === 'open') return o.ws;
    assert.ok(o.status === 429 && Date.now() < deadline, `reconnecting from ${localAddress}: ${o.status} ${o.body}`);
    // Once a second: the address's handshake bucket (BURST, then RATE a second) lasts the 15 s.
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function echoedBack(ws: WebSocket, text: string): Promise<string> {
  const echoed = new Promise<string>((resolve, reject) => {
    ws.once('message', (d) => resolve(String(d)));
    ws.once('close', (code, reason) => reject(new Error(`closed ${code} ${String(reason)} before "${text}" came back`)));
  });
  ws.send(text);
  return echoed;
}

/** `p`, or a failure naming the step that did not finish in `ms` (the test's own timeout would not say which). */
async function phase<T>(what: string, p: Promise<T>, ms = 45_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

test('killing machine B closes only its clients, which reconnect through HAProxy to A: its fallback session ends with 1006, one owned by A goes on', { timeout: 120_000 }, async () => {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < 2; i++) {
    for (const url of [machineA.url('/echo'), machineB.url('/echo')]) {
      const o = await connect(url, { localAddress: `127.0.0.${50 + sockets.length}` });
      if (o.kind === 'open') sockets.push(o.ws);
    }
  }
  assert.equal(sockets.length, 4);
  // An address with all its 3 connections on B: once B is gone they count until B's liveness key expires.
  const full: WebSocket[] = [];
  for (let i = 0; i < 3; i++) {
    const o = await connect(machineB.url('/echo'), { localAddress: '127.0.0.54' });
    if (o.kind === 'open') full.push(o.ws);
  }
  assert.equal(full.length, 3, 'the address fills its quota on B');
  // Fallback sessions through HAProxy until one is owned by B and one by A (B's gauge says whose each is).
  let ownedByB: GatehouseSocket | undefined;
  let ownedByA: GatehouseSocket | undefined;
  for (let i = 0; i < 10 && !(ownedByA && ownedByB); i++) {
    const before = await sessionsOnB();
    const s = new GatehouseSocket(lb.url('/echo'), [], { transport: 'fallback', retryTimeout: 60_000 });
    await phase(`fallback session ${i} opened`, opened(s));
    const onB = (await sessionsOnB()) > before;
    if (onB && !ownedByB) ownedByB = s;
    else if (!onB && !ownedByA) ownedByA = s;
    else {
      s.close();
      // Gone from B's gauge before the next session is told apart by it: a session on B that ended
      // between the two readings would make the next one on B look like A's.
      if (onB) await phase(`session ${i} gone from B`, (async () => { while ((await sessionsOnB()) > before) await new Promise((r) => setTimeout(r, 20)); })());
    }
  }
  assert.ok(ownedByA && ownedByB, 'a session owned by each machine');
  assert.ok(await phase('b1 echoed', echoes(ownedByB, 'b1')) && await phase('a1 echoed', echoes(ownedByA, 'a1')));
  const bClosed = new Promise<GatehouseCloseEvent>((resolve) => { ownedByB!.onclose = (e) => resolve(e); });
  let aClosed: GatehouseCloseEvent | undefined;
  ownedByA.onclose = (e) => { aClosed = e; };
  const codes = [...sockets, ...full].map((ws) => new Promise<number>((resolve) => ws.once('close', (code) => resolve(code))));

  machineB.child.kill('SIGKILL');
  await phase('machine B exited', machineB.exited);

  assert.deepEqual(await phase('B\'s clients closed', Promise.all([codes[1], codes[3], ...codes.slice(4)])), [1006, 1006, 1006, 1006, 1006], 'B\'s clients lost their connections');
  for (const i of [0, 2]) {
    const ws = sockets[i];
    assert.equal(ws.readyState, WebSocket.OPEN, 'A\'s clients stay');
    assert.equal(await phase('A\'s client echoed', echoedBack(ws, 'still here')), 'still here');
    ws.terminate();
  }
  // B's session: its requests that reach A find the owner gone (404), so the client ends it with 1006.
  assert.equal((await phase('B\'s fallback session closed', bClosed)).code, 1006, 'the session whose owner died ends with 1006');
  assert.ok(await phase('a2 echoed', echoes(ownedByA, 'a2')), 'the session owned by A goes on');
  assert.equal(aClosed, undefined);
  ownedByA.close();

  // B's clients come back through HAProxy, which now sends every request to A.
  const deadline = Date.now() + 40_000;
  const back = [await reopen('127.0.0.51', deadline), await reopen('127.0.0.53', deadline)];
  for (let i = 0; i < 3; i++) back.push(await reopen('127.0.0.54', deadline));
  for (const ws of back) assert.equal(await echoedBack(ws, 'back'), 'back', 'a reconnected client is served by A');
  for (const ws of back) ws.terminate();
  const again = new GatehouseSocket(lb.url('/echo'), [], { transport: 'fallback' });
  await phase('a new fallback session opened', opened(again));
  const got = await phase('500 messages through the new session', exchangeSequenced(again, 500, 50));
  assert.deepEqual(got, Array.from({ length: 500 }, (_, i) => `m${i}`), 'a new fallback session, every request at A');
  again.close();
});
