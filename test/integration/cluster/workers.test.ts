/**
 * `workers: 2` in a real `gatehouse start` process: the primary forks two
 * workers that share the listening port (node:cluster hands them connections
 * in turn) and the state that guards security (kept by the primary). Through
 * one port: connections reach both workers; a single-use ticket used on one
 * worker is refused on the other; the per-address connection and handshake
 * limits count both workers' clients; SIGHUP reloads both; a killed worker
 * takes only its own clients with it and is replaced; SIGTERM drains both.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { mintTicket } from '../../../src/auth/ticket.js';
import { START_TIMEOUT_MS, startGatewayProcess, type GatewayProcess } from '../services/helpers/gateway-process.js';
import { connect, type Outcome } from '../auth/common.js';
import { startLoginApp, type LoginApp } from '../../helpers/login-app.js';
import { GatehouseSocket, type GatehouseMessageEvent } from '../../../client/src/index.js';

const KEY = randomBytes(32).toString('hex');
const ADMIN_TOKEN = randomBytes(16).toString('hex');
let admin = '';
let gw: GatewayProcess;
let app: LoginApp;

const config = (extra = ''): string => `
workers: 2
listen: [{ host: 127.0.0.1, port: 0 }]
admin: { host: 127.0.0.1, port: 0, token: "${ADMIN_TOKEN}" }
log: { level: info }
limits: { handshake_rate: 1000, handshake_burst: 1000, connections_per_address: 1000 }
auth: { tickets: { hmac_keys: ["${KEY}"] } }
shutdown: { drain_timeout: 10s }
services:
  echo: { path: /echo, type: echo, allow_missing_origin: true }
  chat:
    path: /chat
    type: echo
    allow_missing_origin: true
    auth: { methods: [{ type: ticket }] }
  limited: { path: /limited, type: echo, allow_missing_origin: true, max_connections: 3 }
  live: { path: /live, type: pubsub, allow_missing_origin: true, pubsub: { subscribe: ["news.*"], publish: ["news.*"] } }
  fwd:
    path: /fwd
    type: echo
    allow_missing_origin: true
    auth: { methods: [{ type: ticket }, { type: forward, url: "${app.authUrl}", cookie: session, cache: 0s, revalidate: 300ms }] }
${extra}`;

interface Line { msg?: string; worker?: number; reason?: string; pids?: number[]; [k: string]: unknown }
function lines(): Line[] {
  return gw.output().split('\n').flatMap((l) => { try { return [JSON.parse(l) as Line]; } catch { return []; } });
}
function pids(): number[] {
  return lines().filter((l) => l.msg === 'workers listening').at(-1)?.pids ?? [];
}

before(async () => {
  app = await startLoginApp({ carol: { password: 'carol-secret-pw' } });
  gw = await startGatewayProcess(config());
  if (pids().length !== 2) await gw.waitFor(/"msg":"workers listening"/);
  admin = (/admin on (http:\/\/[\d.:]+)/.exec(gw.output()) ?? await gw.waitFor(/admin on (http:\/\/[\d.:]+)/, 30_000))[1];
});
after(async () => {
  const workers = pids();
  await gw?.stop();
  await app?.stop();
  // The primary was killed: its workers see the IPC channel close and stop; make sure.
  for (const pid of workers) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
});

const status = (o: Outcome): number => {
  if (o.kind === 'open') { o.ws.terminate(); return 101; }
  return o.status;
};

async function echo(ws: WebSocket, text: string): Promise<string> {
  const got = new Promise<string>((resolve) => ws.once('message', (d) => resolve(String(d))));
  ws.send(text);
  return got;
}

test('connections are spread over both workers; each runs the whole gateway', { timeout: 30_000 }, async () => {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < 4; i++) {
    const o = await connect(gw.url('/echo'));
    assert.equal(o.kind, 'open');
    if (o.kind === 'open') { sockets.push(o.ws); assert.equal(await echo(o.ws, `m${i}`), `m${i}`); }
  }
  const closedLines = (): Line[] => lines().filter((l) => l.event === 'connection.closed');
  const before = closedLines().length;
  for (const ws of sockets) ws.close();
  // The access-log lines come after the close answers: wait for all four.
  while (closedLines().length < before + 4) await gw.waitFor(/"event":"connection.closed"/, 10_000);
  const workersSeen = new Set(closedLines().map((l) => l.worker));
  assert.ok(workersSeen.has(0) && workersSeen.has(1), `both workers served connections (saw ${[...workersSeen].join(',')})`);
});

test('a fallback session is served whichever worker each of its requests reaches', { timeout: 60_000 }, async () => {
  const s = new GatehouseSocket(gw.url('/echo'), [], { transport: 'fallback' });
  await new Promise<void>((resolve, reject) => { s.onopen = () => resolve(); s.onclose = (e) => reject(new Error(`closed ${e.code}`)); });
  const got: string[] = [];
  await new Promise<void>((resolve, reject) => {
    s.onmessage = (e: GatehouseMessageEvent) => { got.push(e.data as string); if (got.length === 500) resolve(); };
    s.onclose = (e) => reject(new Error(`closed ${e.code} ${e.reason} after ${got.length}`));
    for (let i = 0; i < 500; i++) s.send(`m${i}`);
  });
  assert.deepEqual(got, Array.from({ length: 500 }, (_, i) => `m${i}`));
  s.close();
  // Each request opens its own connection at first; node:cluster gave them to both workers in turn.
  assert.ok(lines().some((l) => l.msg === 'taking fallback hops' && l.worker === 1) && lines().some((l) => l.msg === 'taking fallback hops' && l.worker === 0));
});

test('the primary\'s admin listener: /metrics sums the workers, /metrics/workers has each', { timeout: 30_000 }, async () => {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < 4; i++) {
    const o = await connect(gw.url('/echo'));
    if (o.kind === 'open') sockets.push(o.ws);
  }
  const summed = await (await fetch(`${admin}/metrics`)).text();
  const open = Number(/gatehouse_connections_open\{service="echo",transport="websocket"\} (\d+)/.exec(summed)?.[1]);
  assert.equal(open, 4, 'four open connections, two on each worker, summed');
  const byWorker = await (await fetch(`${admin}/metrics/workers`)).text();
  const reported = [0, 1].map((w) => Number(new RegExp(`gatehouse_connections_open\\{service="echo",transport="websocket",worker="${w}"\\} (\\d+)`).exec(byWorker)?.[1]));
  // Where each connection really was: the access-log line of its end names its worker.
  // (node:cluster hands a connection to a worker that is free, so a busy machine may not split them 2 + 2.)
  const closedLines = (): Line[] => lines().filter((l) => l.event === 'connection.closed' && l.service === 'echo');
  const before = closedLines().length;
  for (const ws of sockets) ws.terminate();
  while (closedLines().length < before + 4) await gw.waitFor(/"event":"connection.closed"/, 10_000);
  const ended = closedLines().slice(before);
  for (const w of [0, 1]) {
    assert.equal(reported[w], ended.filter((l) => l.worker === w).length, `worker ${w}'s own series counts the connections it held (${reported.join(' + ')})`);
  }
});

test('pub/sub across workers: a client\'s publish and the admin API\'s reach subscribers on both workers', { timeout: 30_000 }, async () => {
  const P = 'gatehouse.pubsub.v1';
  const subscribers: WebSocket[] = [];
  const inboxes: string[][] = [];
  for (let i = 0; i < 2; i++) {
    const o = await connect(gw.url('/live'), { protocols: [P] });
    assert.equal(o.kind, 'open');
    if (o.kind !== 'open') return;
    const inbox: string[] = [];
    inboxes.push(inbox);
    o.ws.on('message', (d) => inbox.push(String(d)));
    subscribers.push(o.ws);
    o.ws.send(JSON.stringify({ type: 'subscribe', channel: 'news.x', id: 1 }));
  }
  const wait = async (pred: () => boolean): Promise<void> => { while (!pred()) await new Promise((r) => setTimeout(r, 20)); };
  await wait(() => inboxes.every((b) => b.some((m) => m.includes('"subscribed"'))));
  const o = await connect(gw.url('/live'), { protocols: [P] });
  if (o.kind === 'open') o.ws.send(JSON.stringify({ type: 'publish', channel: 'news.x', data: 'from a client' }));
  const res = await fetch(`${admin}/api/publish`, {
    method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ service: 'live', channel: 'news.x', data: { from: 'backend' } }),
  });
  assert.equal(res.status, 200);
  await wait(() => inboxes.every((b) => b.filter((m) => m.includes('"message"')).length === 2));
  for (const b of inboxes) {
    const messages = b.filter((m) => m.includes('"message"')).map((m) => JSON.parse(m) as { data: unknown });
    assert.deepEqual(new Set(messages.map((m) => JSON.stringify(m.data))), new Set(['"from a client"', '{"from":"backend"}']), 'both messages, on each worker');
  }
  for (const ws of subscribers) ws.terminate();
  if (o.kind === 'open') o.ws.terminate();
});

test('a single-use ticket used through one worker is refused through the other', { timeout: 30_000 }, async () => {
  for (let i = 0; i < 4; i++) {
    const ticket = mintTicket(KEY, { svc: 'chat', sub: `u${i}`, exp: Math.floor(Date.now() / 1000) + 30, jti: randomBytes(16).toString('base64url') });
    assert.equal(status(await connect(gw.url(`/chat?ticket=${ticket}`))), 101, `ticket ${i}: first use`);
    assert.equal(status(await connect(gw.url(`/chat?ticket=${ticket}`))), 401, `ticket ${i}: a replay is refused, whichever worker it reaches`);
  }
  // Which worker admitted each ticket (its access-log line names the principal) and which refused its replay (in order).
  const deadline = Date.now() + 10_000;
  const seen = (): { used: Line[]; replays: Line[] } => ({
    used: lines().filter((l) => l.event === 'connection.closed' && l.service === 'chat'),
    replays: lines().filter((l) => l.reason === 'ticket_replayed'),
  });
  while (seen().used.length < 4 || seen().replays.length < 4) {
    assert.ok(Date.now() < deadline, 'the log lines of four uses and four replays');
    await gw.waitFor(/"reason":"ticket_replayed"|"event":"connection.closed"/, 10_000);
  }
  const { used, replays } = seen();
  const crossed = [0, 1, 2, 3].filter((i) => used.find((l) => l.principal === `u${i}`)?.worker !== replays[i].worker);
  assert.ok(crossed.length > 0, 'at least one ticket was used on one worker and its replay refused by the other');
});

test('a ticket issued to a forward-auth user in one worker, redeemed in the other, keeps its session re-check', { timeout: 30_000 }, async () => {
  const cookie = await app.login('carol', 'carol-secret-pw');
  const tickets: string[] = [];
  for (let i = 0; i < 2; i++) {
    const res = await fetch(`http://127.0.0.1:${gw.port}/.gatehouse/tickets?service=fwd`, { method: 'POST', headers: { cookie } });
    assert.equal(res.status, 200, 'ticket issued');
    tickets.push((await res.json() as { ticket: string }).ticket);
  }
  // Two tickets, two connections: round robin puts them on different workers, so at least one crossed.
  const sockets: WebSocket[] = [];
  for (const t of tickets) {
    const o = await connect(gw.url(`/fwd?ticket=${t}`));
    assert.equal(o.kind, 'open', 'the ticket opens');
    if (o.kind === 'open') sockets.push(o.ws);
  }
  const codes = Promise.all(sockets.map((ws) => new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))));
  app.revoke('carol');
  assert.deepEqual(await codes, [1008, 1008], 'both connections end when the session is revoked');
});

test('connection limits count the clients of both workers', { timeout: 30_000 }, async () => {
  const open: WebSocket[] = [];
  for (let i = 0; i < 3; i++) {
    const o = await connect(gw.url('/limited'));
    assert.equal(o.kind, 'open', `connection ${i} within max_connections: 3`);
    if (o.kind === 'open') open.push(o.ws);
  }
  for (let i = 0; i < 2; i++) {
    assert.equal(status(await connect(gw.url('/limited'))), 503, 'the fourth is refused, whichever worker it reaches');
  }
  const freed = new Promise((resolve) => open[0].once('close', resolve));
  open[0].close();
  await freed;
  // The slot comes back once the worker's close has reached the primary: try until it has.
  let s = 0;
  for (let i = 0; i < 50 && s !== 101; i++) s = status(await connect(gw.url('/limited')));
  assert.equal(s, 101, 'a closed connection gives its slot back');
  for (const ws of open) ws.terminate();
});

test('SIGHUP reloads every worker', { timeout: 30_000 }, async () => {
  writeFileSync(gw.configFile, config('  added: { path: /added, type: echo, allow_missing_origin: true }\n'));
  const before = lines().filter((l) => l.msg === 'configuration reloaded').length;
  gw.child.kill('SIGHUP');
  const deadline = Date.now() + 20_000;
  while (lines().filter((l) => l.msg === 'configuration reloaded').length < before + 2) {
    assert.ok(Date.now() < deadline, 'both workers reloaded');
    await gw.waitFor(/configuration reloaded/, 20_000);
  }
  for (let i = 0; i < 4; i++) assert.equal(status(await connect(gw.url('/added'))), 101, `connection ${i} to the new service`);
});

test('a worker that dies takes only its own clients; another is started in its place', { timeout: 150_000 }, async () => {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < 4; i++) {
    const o = await connect(gw.url('/echo'));
    if (o.kind === 'open') sockets.push(o.ws);
  }
  assert.equal(sockets.length, 4);
  const closes = sockets.map((ws) => new Promise<number>((resolve) => ws.once('close', (code) => resolve(code))));
  const [victim, survivor] = pids();
  // How many each worker holds (worker i is pids()[i]): node:cluster hands a connection to a free worker, so a busy machine may not split them 2 + 2.
  const byWorker = await (await fetch(`${admin}/metrics/workers`)).text();
  const held = [0, 1].map((w) => Number(new RegExp(`gatehouse_connections_open\\{service="echo",transport="websocket",worker="${w}"\\} (\\d+)`).exec(byWorker)?.[1] ?? 0));
  assert.equal(held[0] + held[1], 4, `the workers hold the four connections (${held.join(' + ')})`);
  // The new worker compiles the sources before it serves: as long as a gateway's start (over 30 s at load 25).
  const restarted = gw.waitFor(/"msg":"worker restarted"/, START_TIMEOUT_MS);
  process.kill(victim, 'SIGKILL');
  await restarted;
  // The victim's clients are gone (1006), the survivor's still echo.
  const alive: WebSocket[] = [];
  for (const ws of sockets) if (ws.readyState === WebSocket.OPEN) alive.push(ws);
  assert.equal(alive.length, held[1], 'the survivor\'s clients are still open');
  for (const ws of alive) assert.equal(await echo(ws, 'still here'), 'still here');
  const codes = await Promise.all(closes.filter((_, i) => sockets[i].readyState !== WebSocket.OPEN));
  assert.deepEqual(codes, Array<number>(held[0]).fill(1006), 'the dead worker\'s clients saw their connection drop');
  for (let i = 0; i < 4; i++) assert.equal(status(await connect(gw.url('/echo'))), 101, 'new connections are served (by the survivor and the new worker)');
  assert.ok(pids().includes(survivor) || lines().some((l) => l.msg === 'worker restarted'), 'the survivor kept running');
  for (const ws of alive) ws.terminate();
});

test('SIGTERM drains every worker: open connections get 1001, the process exits 0', { timeout: 60_000 }, async () => {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < 4; i++) {
    const o = await connect(gw.url('/echo'));
    if (o.kind === 'open') sockets.push(o.ws);
  }
  const codes = Promise.all(sockets.map((ws) => new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))));
  gw.child.kill('SIGTERM');
  assert.deepEqual(await codes, [1001, 1001, 1001, 1001], 'every connection, on both workers, is told the gateway is going away');
  assert.equal(await gw.exited, 0);
});
