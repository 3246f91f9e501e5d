/**
 * The `pubsub` service in a real gateway: `gatehouse.pubsub.v1` over
 * WebSocket (`ws`) and over the HTTP fallback (the client library), channels
 * authorized per principal with placeholders, refusals answered in the
 * protocol (the connection stays), bad input closing only its own connection.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { cheapPasswordHash } from '../../helpers/test-password-hash.js';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { GatehouseSocket, type GatehouseMessageEvent } from '../../../client/src/index.js';
import { connect } from '../auth/common.js';

const P = 'gatehouse.pubsub.v1';
let gw: TestGateway;
const basic = (u: string): string => `Basic ${Buffer.from(`${u}:${u}-secret-pw`).toString('base64')}`;

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-pubsub-'));
  // (every connection logs in: a cheap hash, or each login costs seconds on a busy machine)
  writeFileSync(join(dir, 'users'), `alice:${cheapPasswordHash('alice-secret-pw')}\nbob:${cheapPasswordHash('bob-secret-pw')}\n`);
  gw = await startGateway({
    limits: { handshake_rate: 1000, handshake_burst: 1000 },
    services: {
      live: {
        path: '/live', type: 'pubsub', allow_missing_origin: true,
        auth: { methods: [{ type: 'basic', users_file: join(dir, 'users') }] },
        pubsub: { subscribe: ['news.**', 'chat.*', 'user.{principal.id}'], publish: ['chat.*', 'user.{principal.id}'], max_subscriptions: 3 },
      },
    },
  });
});
after(async () => { await gw.stop(); });

/** A pub/sub client over `ws`: requests in, every JSON object that comes back in `inbox`. */
class Client {
  readonly inbox: Array<Record<string, unknown>> = [];
  private waiters: Array<() => void> = [];
  constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => { this.inbox.push(JSON.parse(String(d)) as Record<string, unknown>); for (const w of this.waiters.splice(0)) w(); });
  }
  static async open(user: string): Promise<Client> {
    const o = await connect(gw.url('/live'), { protocols: [P], headers: { authorization: basic(user) } });
    if (o.kind !== 'open') throw new Error(`refused ${o.status}`);
    return new Client(o.ws);
  }
  send(req: Record<string, unknown>): void { this.ws.send(JSON.stringify(req)); }
  /** The first object in the inbox matching `pred` (waiting for it). */
  async next(pred: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    for (;;) {
      const i = this.inbox.findIndex(pred);
      if (i >= 0) return this.inbox.splice(i, 1)[0];
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
  async request(req: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.send(req);
    return this.next((m) => m.id === req.id);
  }
}

test('subscribe, publish, receive; the publisher gets its acknowledgement', { timeout: 20_000 }, async () => {
  const alice = await Client.open('alice');
  const bob = await Client.open('bob');
  assert.equal(bob.ws.protocol, P);
  assert.deepEqual(await bob.request({ type: 'subscribe', channel: 'chat.lobby', id: 1 }), { type: 'subscribed', channel: 'chat.lobby', id: 1 });
  assert.deepEqual(await alice.request({ type: 'publish', channel: 'chat.lobby', data: { text: 'hi', n: [1, 2] }, id: 'p1' }),
    { type: 'published', channel: 'chat.lobby', id: 'p1' });
  assert.deepEqual(await bob.next((m) => m.type === 'message'), { type: 'message', channel: 'chat.lobby', data: { text: 'hi', n: [1, 2] } });
  assert.deepEqual(await bob.request({ type: 'unsubscribe', channel: 'chat.lobby', id: 2 }), { type: 'unsubscribed', channel: 'chat.lobby', id: 2 });
  await alice.request({ type: 'publish', channel: 'chat.lobby', data: 'after', id: 'p2' });
  // A marker on another channel proves the unsubscribed one stayed quiet in between (same publisher, in order).
  await bob.request({ type: 'subscribe', channel: 'chat.marker', id: 3 });
  await alice.request({ type: 'publish', channel: 'chat.marker', data: 'marker', id: 'p3' });
  assert.deepEqual(await bob.next((m) => m.type === 'message'), { type: 'message', channel: 'chat.marker', data: 'marker' });
  alice.ws.close();
  bob.ws.close();
});

test('channels per principal: {principal.id} is the verified user, matched literally; a refusal is answered and audited, the connection stays', { timeout: 20_000 }, async () => {
  const bob = await Client.open('bob');
  assert.deepEqual(await bob.request({ type: 'subscribe', channel: 'user.alice', id: 1 }),
    { type: 'error', channel: 'user.alice', id: 1, code: 'forbidden', request: 'subscribe' });
  assert.deepEqual(await bob.request({ type: 'publish', channel: 'news.today', data: 'x', id: 2 }),
    { type: 'error', channel: 'news.today', id: 2, code: 'forbidden', request: 'publish' });
  assert.equal((await bob.request({ type: 'subscribe', channel: 'user.bob', id: 3 })).type, 'subscribed');
  assert.equal((await bob.request({ type: 'subscribe', channel: 'news.world.europe', id: 4 })).type, 'subscribed', 'news.** covers any depth');
  assert.ok(gw.logs.some((l) => l.reason === 'pubsub_forbidden' && l.principal === 'bob' && l.destination === 'user.alice'), 'audit line with principal and channel');
  assert.deepEqual(await bob.request({ type: 'subscribe', channel: 'chat.a', id: 5 }), { type: 'subscribed', channel: 'chat.a', id: 5 });
  assert.deepEqual(await bob.request({ type: 'subscribe', channel: 'chat.b', id: 6 }),
    { type: 'error', channel: 'chat.b', id: 6, code: 'too_many_subscriptions', request: 'subscribe' }, 'max_subscriptions: 3');
  assert.equal(bob.ws.readyState, WebSocket.OPEN);
  bob.ws.close();
});

test('bad input closes only its own connection: binary 1003, not a request 1008; no subprotocol 400', { timeout: 20_000 }, async () => {
  const bystander = await Client.open('alice');
  await bystander.request({ type: 'subscribe', channel: 'chat.calm', id: 1 });
  for (const [payload, code, reason] of [
    [Buffer.from([1, 2, 3]), 1003, 'pubsub_binary'],
    ['not json', 1008, 'pubsub_bad_message'],
    [JSON.stringify({ type: 'subscribe', channel: 'chat.*' }), 1008, 'pubsub_bad_message'],
    [JSON.stringify({ type: 'shout', channel: 'chat.x' }), 1008, 'pubsub_bad_message'],
  ] as const) {
    const c = await Client.open('bob');
    const closed = new Promise<number>((r) => c.ws.once('close', (code) => r(code)));
    c.ws.send(payload);
    assert.equal(await closed, code, `${String(payload)} → ${code}`);
    assert.ok(gw.auditReasons().includes(reason));
  }
  const refused = await connect(gw.url('/live'), { headers: { authorization: basic('bob') } });
  assert.equal(refused.kind === 'refused' && refused.status, 400, 'a client that does not speak gatehouse.pubsub.v1 is refused');
  assert.equal((await bystander.request({ type: 'publish', channel: 'chat.calm', data: 'fine', id: 2 })).type, 'published', 'the others are unaffected');
  bystander.ws.close();
});

test('over the HTTP fallback: the same protocol through the client library', { timeout: 20_000 }, async () => {
  const s = new GatehouseSocket(gw.url('/live'), [P], { transport: 'fallback', headers: { authorization: basic('bob') } });
  const inbox: Array<Record<string, unknown>> = [];
  let wake: (() => void) | undefined;
  s.onmessage = (e: GatehouseMessageEvent) => { inbox.push(JSON.parse(e.data as string) as Record<string, unknown>); wake?.(); };
  await new Promise<void>((resolve, reject) => { s.onopen = () => resolve(); s.onclose = (e) => reject(new Error(`closed ${e.code}`)); });
  assert.equal(s.protocol, P);
  const until = async (pred: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> => {
    for (;;) {
      const m = inbox.find(pred);
      if (m) return m;
      await new Promise<void>((r) => { wake = r; });
    }
  };
  s.send(JSON.stringify({ type: 'subscribe', channel: 'user.bob', id: 1 }));
  await until((m) => m.type === 'subscribed');
  const alice = await Client.open('alice');
  // Alice may not publish to bob's channel; bob may.
  assert.equal((await alice.request({ type: 'publish', channel: 'user.bob', data: 'x', id: 1 })).code, 'forbidden');
  s.send(JSON.stringify({ type: 'publish', channel: 'user.bob', data: 'note to self' }));
  assert.deepEqual(await until((m) => m.type === 'message'), { type: 'message', channel: 'user.bob', data: 'note to self' });
  s.close();
  alice.ws.close();
});
