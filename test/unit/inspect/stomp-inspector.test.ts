/**
 * The STOMP inspector of one connection, driven directly (a recording
 * InspectorActions in place of the relay): the CONNECT rewrite (identity,
 * heart-beat, versions), the header policy of SUBSCRIBE and SEND, the
 * broker's side, and message types toward each end. The same inspector
 * against a real RabbitMQ: test/integration/inspect/stomp.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Admission } from '../../../src/admitted.js';
import type { InspectorActions, Refusal, Violation } from '../../../src/relay/inspector.js';
import { StompInspector } from '../../../src/inspect/stomp/inspector.js';
import { stompPolicy } from '../../../src/inspect/stomp/policy.js';
import { stompInspectSchema, type StompInspectConfig } from '../../../src/config/inspect.js';

interface Sent { to: 'backend' | 'client'; text: string; binary: boolean }

class Recorder implements InspectorActions {
  sent: Sent[] = [];
  private endedWith?: Violation & { direction?: string };
  /** The violation that ended the connection (a method: an assertion on it does not narrow later reads). */
  ended(): (Violation & { direction?: string }) | undefined { return this.endedWith; }
  refusals: Refusal[] = [];
  sendToBackend(data: Buffer, isBinary: boolean): void { this.sent.push({ to: 'backend', text: data.toString('latin1'), binary: isBinary }); }
  sendToClient(data: Buffer, isBinary: boolean): void { this.sent.push({ to: 'client', text: data.toString('latin1'), binary: isBinary }); }
  pieceToBackend(): void { assert.fail('STOMP sends whole frames'); }
  pieceToClient(): void { assert.fail('STOMP sends whole frames'); }
  refused(r: Refusal): void { this.refusals.push(r); }
  end(v: Violation, direction?: string): void { this.endedWith = { ...v, direction }; }
  to(side: 'backend' | 'client'): string[] { return this.sent.filter((s) => s.to === side).map((s) => s.text); }
}

const admissionOf = (principal?: { id: string; claims: Record<string, unknown> }): Admission =>
  ({ principal: principal && { ...principal, roles: [], method: 'jwt' } }) as unknown as Admission;

function inspector(config: Partial<Record<keyof StompInspectConfig, unknown>> = {}, opts: { principal?: { id: string; claims: Record<string, unknown> }; backendStream?: boolean } = {}) {
  const actions = new Recorder();
  const parsed = stompInspectSchema.parse({ subscribe: ['/queue/user.{principal.id}', '/topic/**'], send: ['/queue/user.{principal.id}'], ...config });
  const i = new StompInspector({ admission: admissionOf('principal' in opts ? opts.principal : { id: 'alice', claims: { room: '7' } }), actions, backendStream: opts.backendStream ?? false }, stompPolicy(parsed, 65536));
  const client = (text: string, binary = false): void => i.fromClient(Buffer.from(text, 'latin1'), binary);
  const broker = (text: string | Buffer, binary = false): void => i.fromBackend(Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1'), binary);
  return { i, actions, client, broker };
}

const CONNECT = 'CONNECT\naccept-version:1.1,1.2\nhost:/\nlogin:mallory\npasscode:pw\n\n\0';
const CONNECTED = 'CONNECTED\nversion:1.2\n\n\0';

describe('STOMP inspector: CONNECT', () => {
  it('without `connect` configured, CONNECT passes as sent', (t) => {
    const { actions, client, i } = inspector();
    t.after(() => i.end());
    client(CONNECT);
    assert.deepEqual(actions.to('backend'), [CONNECT]);
  });

  it('`connect` replaces login and passcode (and host) with the configured identity, filled from the principal', (t) => {
    const { actions, client, i } = inspector({ connect: { login: '{principal.id}', passcode: 'gw-secret', host: 'vhost-{claims.room}' } });
    t.after(() => i.end());
    client('CONNECT\naccept-version:1.2\nhost:/\nlogin:mallory\npasscode:pw\nx-extra:kept\n\n\0');
    assert.deepEqual(actions.to('backend'), ['CONNECT\naccept-version:1.2\nx-extra:kept\nlogin:alice\npasscode:gw-secret\nhost:vhost-7\n\n\0']);
  });

  it('a login that would carry a newline, or an absent placeholder, refuses the connection (1008) instead', (t) => {
    for (const [principal, login] of [[{ id: 'eve\npasscode:x', claims: {} }, '{principal.id}'], [{ id: 'bob', claims: {} }, '{claims.missing}'], [undefined, '{principal.id}']] as const) {
      const { actions, client, i } = inspector({ connect: { login } }, { principal });
      t.after(() => i.end());
      client(CONNECT);
      assert.deepEqual(actions.to('backend'), [], 'nothing reached the broker');
      assert.equal(actions.ended()?.code, 1008);
      assert.equal(actions.ended()?.reason, 'stomp_identity_unavailable');
      assert.match(actions.to('client')[0], /^ERROR\nmessage:/);
    }
  });

  it('heart-beat intervals below min_heart_beat are raised; 0 stays 0; malformed is refused', (t) => {
    const a = inspector({ min_heart_beat: '1s' });
    t.after(() => a.i.end());
    a.client('CONNECT\naccept-version:1.2\nheart-beat:1,0\n\n\0');
    assert.deepEqual(a.actions.to('backend'), ['CONNECT\naccept-version:1.2\nheart-beat:1000,0\n\n\0']);
    const b = inspector();
    t.after(() => b.i.end());
    b.client('CONNECT\naccept-version:1.2\nheart-beat:5000,x\n\n\0');
    assert.equal(b.actions.ended()?.reason, 'stomp_bad_heart_beat');
  });

  it('accept-version with no version the gateway speaks is refused; repeated login is refused', (t) => {
    const a = inspector();
    t.after(() => a.i.end());
    a.client('CONNECT\naccept-version:2.0\n\n\0');
    assert.deepEqual([a.actions.ended()?.code, a.actions.ended()?.reason], [1002, 'stomp_version_unsupported']);
    const b = inspector();
    t.after(() => b.i.end());
    b.client('STOMP\naccept-version:1.2\nlogin:a\nlogin:b\n\n\0');
    assert.deepEqual([b.actions.ended()?.code, b.actions.ended()?.reason], [1002, 'stomp_repeated_header']);
  });

  it('CONNECTED must name a version the client accepted; frames read ahead must be in the version chosen', (t) => {
    const a = inspector();
    t.after(() => a.i.end());
    a.client('CONNECT\naccept-version:1.1\n\n\0');
    a.broker(CONNECTED);
    assert.deepEqual([a.actions.ended()?.code, a.actions.ended()?.reason, a.actions.ended()?.direction], [1014, 'stomp_backend_protocol_error', 'to_client']);
    const b = inspector();
    t.after(() => b.i.end());
    b.client(`${CONNECT}SEND\ndestination:/queue/user.alice\n\n\0`);
    b.broker('CONNECTED\nversion:1.1\n\n\0');
    assert.equal(b.actions.ended()?.code, 1014, 'the SEND was read as 1.2');
    const c = inspector();
    t.after(() => c.i.end());
    c.client(CONNECT);
    c.broker('CONNECTED\nversion:1.1\n\n\0');
    assert.equal(c.actions.ended(), undefined);
    c.client('SEND\ndestination:/queue/user.alice\nx:\\r\n\n\0');
    assert.equal(c.actions.ended()?.reason, 'stomp_bad_escape', 'now read as 1.1, which has no \\r');
  });
});

describe('STOMP inspector: SUBSCRIBE and SEND headers', () => {
  function connected(config = {}, opts = {}) {
    const r = inspector(config, opts);
    r.client(CONNECT);
    r.broker(CONNECTED);
    r.actions.sent = [];
    return r;
  }

  it('SEND: user-id is stripped; reply-to must be a temp queue or subscribable; destination and reply-to once only', (t) => {
    const r = connected();
    t.after(() => r.i.end());
    r.client('SEND\ndestination:/queue/user.alice\nuser-id:admin\nreceipt:1\n\nhi\0');
    assert.deepEqual(r.actions.to('backend'), ['SEND\ndestination:/queue/user.alice\nreceipt:1\n\nhi\0']);
    r.client('SEND\ndestination:/queue/user.alice\nreply-to:/temp-queue/answers\n\n\0');
    r.client('SEND\ndestination:/queue/user.alice\nreply-to:/topic/replies.x\n\n\0');
    assert.equal(r.actions.to('backend').length, 3);
    r.client('SEND\ndestination:/queue/user.alice\nreply-to:/queue/user.bob\nreceipt:77\n\n\0');
    assert.deepEqual([r.actions.ended()?.code, r.actions.ended()?.reason, r.actions.ended()?.destination], [1008, 'stomp_reply_to_denied', '/queue/user.bob']);
    assert.match(r.actions.to('client')[0], /^ERROR\nmessage:reply-to not allowed\nreceipt-id:77\n/);
    const d = connected();
    t.after(() => d.i.end());
    d.client('SEND\ndestination:/queue/user.alice\ndestination:/queue/user.bob\n\n\0');
    assert.deepEqual([d.actions.ended()?.code, d.actions.ended()?.reason], [1002, 'stomp_repeated_header']);
    for (const header of ['x-dead-letter-exchange:amq.topic', 'x-dead-letter-routing-key:room.43']) {
      const q = connected();
      t.after(() => q.i.end());
      q.client(`SEND\ndestination:/queue/user.alice\n${header}\n\n\0`);
      assert.deepEqual([q.actions.ended()?.code, q.actions.ended()?.reason], [1008, 'stomp_header_refused'], header);
      assert.deepEqual(q.actions.to('backend'), [], header);
    }
  });

  it('SUBSCRIBE: selector and x-queue-name are refused; subscriptions are counted by id, UNSUBSCRIBE frees one', (t) => {
    for (const header of ['selector:a = 1', 'x-queue-name:user.bob', 'x-dead-letter-exchange:amq.topic', 'x-dead-letter-routing-key:room.43']) {
      const r = connected();
      t.after(() => r.i.end());
      r.client(`SUBSCRIBE\nid:1\ndestination:/topic/a\n${header}\n\n\0`);
      assert.equal(r.actions.ended()?.code, 1008, header);
      assert.deepEqual(r.actions.to('backend'), []);
    }
    const r = connected({ max_subscriptions: 2 });
    t.after(() => r.i.end());
    r.client('SUBSCRIBE\nid:1\ndestination:/topic/a\n\n\0SUBSCRIBE\nid:2\ndestination:/topic/b\n\n\0UNSUBSCRIBE\nid:1\n\n\0SUBSCRIBE\nid:3\ndestination:/topic/c\n\n\0');
    assert.equal(r.actions.ended(), undefined);
    r.client('SUBSCRIBE\nid:4\ndestination:/topic/d\n\n\0');
    assert.deepEqual([r.actions.ended()?.code, r.actions.ended()?.reason], [1008, 'stomp_too_many_subscriptions']);
  });

  it('a durable SUBSCRIBE gets a queue name bound to the principal, and so does a durable UNSUBSCRIBE of it; without a principal or an id it is refused', (t) => {
    const names: string[] = [];
    for (const id of ['alice', 'bob']) {
      const r = connected({}, { principal: { id, claims: {} } });
      t.after(() => r.i.end());
      r.client('SUBSCRIBE\nid:1\ndestination:/topic/a\ndurable: True\nauto-delete:false\n\n\0UNSUBSCRIBE\nid:1\npersistent:true\n\n\0');
      const [subscribe, unsubscribe] = r.actions.to('backend');
      const name = /\nx-queue-name:(stomp-subscription-[A-Za-z0-9_-]{43})\n/.exec(subscribe)?.[1];
      assert.ok(name, subscribe);
      assert.ok(subscribe.startsWith('SUBSCRIBE\nid:1\ndestination:/topic/a\ndurable: True\nauto-delete:false\n'), 'the client\'s headers as they were');
      assert.equal(unsubscribe, `UNSUBSCRIBE\nid:1\npersistent:true\nx-queue-name:${name}\n\n\0`, 'the UNSUBSCRIBE names the same queue');
      names.push(name);
    }
    assert.notEqual(names[0], names[1], 'each principal has a queue of its own');
    // Not durable: passes as sent, and so does its UNSUBSCRIBE; one for an id never subscribed names no queue.
    const plain = connected();
    t.after(() => plain.i.end());
    const frames = ['SUBSCRIBE\nid:1\ndestination:/topic/a\ndurable:false\n\n\0', 'UNSUBSCRIBE\nid:1\n\n\0', 'UNSUBSCRIBE\nid:9\ndurable:true\n\n\0'];
    for (const f of frames) plain.client(f);
    assert.deepEqual(plain.actions.to('backend').slice(-3), frames);
    const cases: Array<[{ id: string; claims: Record<string, unknown> } | undefined, string, number, string]> = [
      [undefined, 'SUBSCRIBE\nid:1\ndestination:/topic/a\ndurable:true\n\n\0', 1008, 'stomp_identity_unavailable'],
      [{ id: 'alice', claims: {} }, 'SUBSCRIBE\ndestination:/topic/a\npersistent:true\n\n\0', 1002, 'stomp_missing_header'],
      [{ id: 'alice', claims: {} }, 'SUBSCRIBE\nid:1\ndestination:/topic/a\ndurable:true\ndurable:false\n\n\0', 1002, 'stomp_repeated_header'],
      [{ id: 'alice', claims: {} }, 'UNSUBSCRIBE\nid:1\ndurable:true\nx-queue-name:stomp-subscription-other\n\n\0', 1008, 'stomp_header_refused'],
    ];
    for (const [principal, frame, code, reason] of cases) {
      const r = connected({}, { principal });
      t.after(() => r.i.end());
      const before = r.actions.to('backend').length;
      r.client(frame);
      assert.deepEqual([r.actions.ended()?.code, r.actions.ended()?.reason], [code, reason], frame);
      assert.equal(r.actions.to('backend').length, before, `${reason}: nothing reached the broker`);
    }
  });

  it('a durable subscription\'s queue is reached through its subscription only: /queue/, /amq/queue/, the default exchange and reply-to naming one are refused, whatever the patterns allow', (t) => {
    const wide = { subscribe: ['**'], send: ['**'] };
    const queue = 'stomp-subscription-0aFbEJdEY9rY2r3cJk4yQ8qD1Zz0pN5cJb8sL0uYx1c';
    const frames = [
      `SUBSCRIBE\nid:1\ndestination:/amq/queue/${queue}\n\n\0`,
      `SUBSCRIBE\nid:1\ndestination:/queue/${queue}\n\n\0`,
      `SUBSCRIBE\nid:1\ndestination:/queue/stomp%2Dsubscription-x\n\n\0`,
      `SEND\ndestination:/amq/queue/${queue}\n\nstolen\0`,
      `SEND\ndestination:/exchange/amq.default/${queue}\n\ninjected\0`,
      `SEND\ndestination:/queue/support\nreply-to:/queue/${queue}\n\n\0`,
    ];
    for (const frame of frames) {
      const r = connected(wide, { principal: { id: 'mallory', claims: {} } });
      t.after(() => r.i.end());
      r.client(frame);
      assert.deepEqual([r.actions.ended()?.code, r.actions.ended()?.reason], [1008, 'stomp_subscription_queue_refused'], frame);
      assert.deepEqual(r.actions.to('backend'), [], `nothing reached the broker: ${frame}`);
    }
    // Names that only resemble one pass.
    const r = connected(wide);
    t.after(() => r.i.end());
    const fine = ['SUBSCRIBE\nid:1\ndestination:/queue/my-stomp-subscription-list\n\n\0', 'SEND\ndestination:/topic/stomp-subscriptions\n\n\0'];
    for (const frame of fine) r.client(frame);
    assert.equal(r.actions.ended(), undefined);
    assert.deepEqual(r.actions.to('backend'), fine);
  });

  it('frames of a byte-stream (tcp) backend reach the client as text when UTF-8, else binary; heart-beats pass both ways', (t) => {
    const r = connected({}, { backendStream: true });
    t.after(() => r.i.end());
    r.broker(Buffer.from('MESSAGE\ndestination:/topic/a\n\nhé\0\n', 'utf8'), true);
    r.broker(Buffer.concat([Buffer.from('MESSAGE\ndestination:/topic/a\n\n'), Buffer.from([0xff]), Buffer.from('\0')]), true);
    r.broker('\n', true);
    r.client('\n');
    assert.deepEqual(r.actions.sent.map((s) => [s.to, s.binary, s.text.split('\n')[0]]), [
      ['client', false, 'MESSAGE'], ['client', true, 'MESSAGE'], ['client', false, ''], ['backend', false, ''],
    ]);
  });

  it('the broker: nothing but CONNECTED or ERROR before CONNECTED; a second CONNECTED; malformed frames → 1014', (t) => {
    const a = inspector();
    t.after(() => a.i.end());
    a.client(CONNECT);
    a.broker('MESSAGE\ndestination:/x\n\n\0');
    assert.deepEqual([a.actions.ended()?.code, a.actions.ended()?.detail], [1014, 'MESSAGE before CONNECTED']);
    const b = connected();
    t.after(() => b.i.end());
    b.broker(CONNECTED);
    assert.deepEqual([b.actions.ended()?.code, b.actions.ended()?.detail], [1014, 'a second CONNECTED']);
    const c = connected();
    t.after(() => c.i.end());
    c.broker('SEND\n\n\0');
    assert.equal(c.actions.ended()?.code, 1014);
    assert.match(String(c.actions.ended()?.detail), /stomp_unknown_command/);
    assert.deepEqual(c.actions.to('client'), [], 'nothing malformed passed on');
  });

  it('ERROR before CONNECTED (a failed login) reaches the client', (t) => {
    const a = inspector();
    t.after(() => a.i.end());
    a.client(CONNECT);
    a.broker('ERROR\nmessage:Access refused\n\n\0');
    assert.deepEqual(a.actions.to('client'), ['ERROR\nmessage:Access refused\n\n\0']);
    assert.equal(a.actions.ended(), undefined);
  });
});
