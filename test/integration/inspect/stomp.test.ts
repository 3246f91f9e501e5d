/**
 * The STOMP inspector with real parts: `@stomp/stompjs` (and raw `ws`
 * clients for byte-level cases) through the gateway to a private RabbitMQ,
 * over a `tcp` backend (rabbitmq_stomp) and a `websocket` backend
 * (rabbitmq_web_stomp). The broker's own view (rabbitmqctl) checks what
 * reached it: the login it authenticated, the queues and bindings a refused
 * frame would have created. A scripted TCP server plays a broker that breaks
 * the protocol.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { EventEmitter, once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { Client, type IFrame, type IMessage } from '@stomp/stompjs';
import { SignJWT } from 'jose';
import WebSocket, { WebSocketServer } from 'ws';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { startRabbitMq, type RabbitMq } from '../../helpers/rabbitmq.js';

const SECRET = 'a-shared-secret-of-at-least-32-bytes!!';
const BROKER_PASSWORD = randomBytes(12).toString('hex');
const PROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'];
const LIMITS = { handshake_rate: 100_000, handshake_burst: 100_000, message_rate: 100_000 };

const policy = {
  subscribe: ['/topic/news.*', '/exchange/amq.topic/room.{claims.room}', '/queue/user.{principal.id}', '/topic/user.{principal.id}'],
  send: ['/exchange/amq.topic/room.{claims.room}', '/queue/support', '/queue/user.{principal.id}', '/topic/user.{principal.id}'],
  max_subscriptions: 3,
};

function service(path: string, backend: string, stomp: Record<string, unknown>): Record<string, unknown> {
  const type = backend.startsWith('ws') ? 'websocket' : 'tcp';
  return {
    path, type, backend, subprotocols: PROTOCOLS, require_subprotocol: true, allow_missing_origin: true,
    auth: { methods: [{ type: 'jwt', issuers: [{ issuer: 'test', audience: 'gatehouse', algorithms: ['HS256'], secret: SECRET }], from: ['header'] }] },
    inspect: { stomp },
  };
}

let broker: RabbitMq;
let gw: TestGateway;
let badBroker: net.Server;
let badWebStomp: WebSocketServer;
/** Emits `closed` when a connection to a scripted broker has closed. */
const badBrokerClosed = new EventEmitter();

/** What the scripted broker sends after a CONNECT whose `host` is the key: each breaks the protocol. */
const BAD_BROKER: Record<string, string> = {
  'bad-escape': 'CONNECTED\nversion:1.2\n\n\0MESSAGE\ndestination:/queue/x\nbad:\\t\n\nhi\0',
  'message-first': 'MESSAGE\ndestination:/queue/x\n\n\0',
  'unknown-command': 'CONNECTED\nversion:1.2\n\n\0BOGUS\n\n\0',
  'client-command': 'CONNECTED\nversion:1.2\n\n\0SEND\ndestination:/queue/x\n\n\0',
  'version-not-offered': 'CONNECTED\nversion:9.9\n\n\0',
  'second-connected': 'CONNECTED\nversion:1.2\n\n\0CONNECTED\nversion:1.2\n\n\0',
  'content-length-short': 'CONNECTED\nversion:1.2\n\n\0MESSAGE\ndestination:/queue/x\ncontent-length:2\n\nhello\0',
  // Over max_frame (4 KiB) in its head, and over max_body (= max_frame): never finished, the gateway must neither wait for their end nor hold them.
  'frame-too-large': `CONNECTED\nversion:1.2\n\n\0MESSAGE\n${Array.from({ length: 20 }, (_, i) => `h${i}:${'v'.repeat(300)}\n`).join('')}`,
  'body-too-large': `CONNECTED\nversion:1.2\n\n\0MESSAGE\ndestination:/queue/x\n\n${'m'.repeat(64 * 1024)}`,
  'too-many-headers': `CONNECTED\nversion:1.2\n\n\0MESSAGE\n${Array.from({ length: 40 }, (_, i) => `h${i}:v\n`).join('')}\n\0`,
  // These close the connection (a FIN): at once, after an ERROR, after the client's DISCONNECT.
  'hang-up': 'CONNECTED\nversion:1.2\n\n\0',
  'error-then-close': 'ERROR\nmessage:go away\n\n\0',
  'close-on-disconnect': 'CONNECTED\nversion:1.2\n\n\0',
};
before(async () => {
  broker = await startRabbitMq();
  await broker.addUser('alice', BROKER_PASSWORD);
  await broker.addUser('bob', BROKER_PASSWORD);
  // A broker that breaks the protocol in the way the CONNECT's `host` names (BAD_BROKER); it tells when the gateway closes it.
  badBroker = net.createServer((s) => {
    s.on('error', () => {});
    let head = '';
    let host: string | undefined;
    s.on('data', (d) => {
      if (host !== undefined) {
        if (host === 'close-on-disconnect' && d.toString('latin1').includes('DISCONNECT')) s.end();
        return;
      }
      head += d.toString('latin1');
      host = head.includes('\0') ? /\nhost:([^\n]*)\n/.exec(head)?.[1] : undefined;
      if (host === undefined) return;
      s.write(BAD_BROKER[host] ?? 'ERROR\nmessage:no such case\n\n\0');
      if (host === 'hang-up' || host === 'error-then-close') s.end();
    });
    s.once('close', () => badBrokerClosed.emit('closed'));
  });
  await new Promise<void>((resolve) => badBroker.listen(0, '127.0.0.1', resolve));
  // The same as a Web-STOMP endpoint: CONNECTED, then a frame with an unknown command.
  badWebStomp = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/ws', handleProtocols: (p) => p.values().next().value ?? false });
  badWebStomp.on('connection', (ws) => {
    ws.once('message', () => { ws.send('CONNECTED\nversion:1.2\n\n\0'); ws.send('BOGUS\n\n\0'); });
    ws.once('close', () => badBrokerClosed.emit('closed'));
  });
  await new Promise<void>((resolve) => badWebStomp.once('listening', resolve));
  const identity = { login: '{principal.id}', passcode: '${BROKER_PASSWORD}', host: '/' };
  gw = await startGateway({
    limits: LIMITS,
    services: {
      tcp: service('/tcp', broker.stompUrl, { ...policy, connect: identity }),
      ws: service('/ws', broker.webStompUrl, { ...policy, connect: identity }),
      // The client's own broker login passes (guest): ids that are no broker users.
      guest: service('/guest', broker.webStompUrl, { ...policy }),
      quiet: service('/quiet', broker.stompUrl, { ...policy, connect: identity, on_violation: 'close' }),
      slow: service('/slow', broker.stompUrl, { ...policy, connect_timeout: '300ms' }),
      bad: service('/bad', `tcp://127.0.0.1:${(badBroker.address() as net.AddressInfo).port}`, { ...policy, max_frame: '4KiB' }),
      'bad-ws': service('/bad-ws', `ws://127.0.0.1:${(badWebStomp.address() as net.AddressInfo).port}/ws`, { ...policy }),
      small: service('/small', broker.webStompUrl, { ...policy, connect: identity, max_frame: '1KiB', max_body: 256, max_headers: 8 }),
      // Patterns as wide as an operator might write them: every queue by name.
      wide: service('/wide', broker.stompUrl, { subscribe: ['/amq/queue/**', '/queue/**', '/topic/**'], send: ['/amq/queue/**', '/queue/**', '/exchange/**'], connect: identity }),
    },
  }, { BROKER_PASSWORD });
}, { timeout: 120_000 });

after(async () => {
  await gw?.stop();
  await broker?.stop();
  await new Promise((resolve) => badBroker?.close(resolve));
  await new Promise((resolve) => badWebStomp?.close(resolve));
}, { timeout: 60_000 });

function token(sub: string, claims: Record<string, unknown> = { room: '42' }): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuer('test').setAudience('gatehouse')
    .setExpirationTime(Math.floor(Date.now() / 1000) + 600).sign(new TextEncoder().encode(SECRET));
}

interface Stomp {
  client: Client;
  connected: IFrame;
  /** ERROR frames received. */
  errors: IFrame[];
  /** The WebSocket's close, once it comes. */
  closed: Promise<{ code: number; reason: string }>;
}

/** stompjs over `ws` to the gateway, CONNECTED; its own login is a lie the gateway replaces where configured. */
async function stomp(path: string, user: string, claims?: Record<string, unknown>): Promise<Stomp> {
  const bearer = await token(user, claims);
  let closedResolve!: (v: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => { closedResolve = resolve; });
  const errors: IFrame[] = [];
  const client = new Client({
    webSocketFactory: () => new WebSocket(gw.url(path), PROTOCOLS, { headers: { authorization: `Bearer ${bearer}` } }),
    connectHeaders: path === '/guest' ? { login: 'guest', passcode: 'guest' } : { login: 'mallory', passcode: 'not-the-password' },
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
    debug: process.env.STOMP_DEBUG ? (m) => console.log(user, m) : () => {},
  });
  client.onStompError = (f) => { errors.push(f); };
  const connected = await new Promise<IFrame>((resolve, reject) => {
    client.onConnect = resolve;
    client.onWebSocketClose = (e: { code: number; reason: string }) => { closedResolve({ code: e.code, reason: e.reason }); reject(new Error(`closed ${e.code} ${e.reason} ${errors.map((f) => f.headers.message).join()}`)); };
    client.activate();
  });
  client.onWebSocketClose = (e: { code: number; reason: string }) => closedResolve({ code: e.code, reason: e.reason });
  return { client, connected, errors, closed };
}

/** Subscribes and waits for the broker's RECEIPT, so that a message sent next cannot overtake the subscription. */
async function subscribe(s: Stomp, destination: string): Promise<{ message: Promise<IMessage> }> {
  const receipt = `sub-${randomBytes(3).toString('hex')}`;
  const receipted = new Promise<void>((resolve) => s.client.watchForReceipt(receipt, () => resolve()));
  const message = new Promise<IMessage>((resolve) => { s.client.subscribe(destination, resolve, { receipt }); });
  await receipted;
  return { message };
}

function auditFor(reason: string): Record<string, unknown> | undefined {
  return gw.logs.find((l) => l.audit && l.reason === reason) as Record<string, unknown> | undefined;
}

for (const [name, path] of [['tcp (rabbitmq_stomp)', '/tcp'], ['websocket (Web-STOMP)', '/ws']] as const) {
  describe(`STOMP inspection, ${name} backend`, () => {
    it('allowed SUBSCRIBE and SEND work end to end; the broker authenticated the injected login, not the client\'s', { timeout: 60_000 }, async () => {
      const user = path === '/tcp' ? 'alice' : 'bob';
      const s = await stomp(path, user);
      try {
        assert.equal(s.connected.headers.version, '1.2');
        const own = await subscribe(s, `/queue/user.${user}`);
        const room = await subscribe(s, '/exchange/amq.topic/room.42');
        s.client.publish({ destination: `/queue/user.${user}`, body: 'to myself ✓' });
        s.client.publish({ destination: '/exchange/amq.topic/room.42', body: 'to the room' });
        assert.equal((await own.message).body, 'to myself ✓');
        assert.equal((await room.message).body, 'to the room');
        const users = await broker.sessionUsers();
        assert.ok(users.includes(user), `the broker sees ${user}: ${users.join(', ')}`);
        assert.ok(!users.includes('mallory'), 'never the client\'s own login');
      } finally {
        await s.client.deactivate();
      }
    });

    it('a forbidden SUBSCRIBE gets ERROR (with receipt-id) and close 1008; the broker never saw it', { timeout: 30_000 }, async () => {
      const queue = `secret-${randomBytes(4).toString('hex')}`;
      const counter = { service: path.slice(1), protocol: 'v12.stomp', reason: 'stomp_subscribe_denied' };
      const before = gw.gateway.metrics.get('gatehouse_inspection_refusals_total', counter);
      const s = await stomp(path, 'alice');
      s.client.subscribe(`/queue/${queue}`, () => {}, { receipt: 'r-forbidden' });
      const { code, reason } = await s.closed;
      assert.equal(code, 1008);
      assert.equal(reason, 'stomp_subscribe_denied');
      assert.equal(s.errors.length, 1);
      assert.equal(s.errors[0].headers['receipt-id'], 'r-forbidden');
      assert.equal(s.errors[0].headers.message, 'subscription not allowed');
      assert.ok(!(await broker.queues()).includes(queue), 'the broker never declared the queue');
      const line = gw.logs.find((l) => l.audit && l.reason === 'stomp_subscribe_denied' && l.destination === `/queue/${queue}`);
      assert.ok(line, 'audit line');
      assert.equal(line.principal, 'alice');
      assert.equal(line.command, 'SUBSCRIBE');
      assert.equal(gw.gateway.metrics.get('gatehouse_inspection_refusals_total', counter), before + 1);
      await s.client.deactivate();
    });

    it('a forbidden SEND inside a transaction gets ERROR and close 1008; the broker never saw it', { timeout: 30_000 }, async () => {
      const queue = `secret-${randomBytes(4).toString('hex')}`;
      const s = await stomp(path, 'alice');
      const tx = s.client.begin();
      s.client.publish({ destination: `/queue/${queue}`, body: 'leak', headers: { transaction: tx.id } });
      const { code } = await s.closed;
      assert.equal(code, 1008);
      assert.equal(s.errors[0]?.headers.message, 'send not allowed');
      assert.ok(!(await broker.queues()).includes(queue), 'the broker never declared the queue');
      const line = gw.logs.find((l) => l.audit && l.reason === 'stomp_send_denied' && l.destination === `/queue/${queue}`);
      assert.equal(line?.command, 'SEND');
      await s.client.deactivate();
    });

    it('headers that name another user: user-id is stripped, a reply-to the client may not read is refused', { timeout: 30_000 }, async () => {
      const user = path === '/tcp' ? 'alice' : 'bob';
      const s = await stomp(path, user);
      const own = await subscribe(s, `/queue/user.${user}`);
      // RabbitMQ would refuse a user-id that is not the login; the message arrives without it.
      s.client.publish({ destination: `/queue/user.${user}`, body: 'as someone else', headers: { 'user-id': 'mallory' } });
      const got = await own.message;
      assert.equal(got.body, 'as someone else');
      assert.notEqual(got.headers['user-id'], 'mallory', 'the broker never saw the client\'s user-id');
      s.client.publish({ destination: `/queue/user.${user}`, body: 'answer me', headers: { 'reply-to': '/queue/user.carol', receipt: 'r-reply' } });
      assert.deepEqual(await s.closed, { code: 1008, reason: 'stomp_reply_to_denied' });
      assert.equal(s.errors[0]?.headers['receipt-id'], 'r-reply');
      const line = gw.logs.find((l) => l.audit && l.reason === 'stomp_reply_to_denied' && l.service === path.slice(1));
      assert.deepEqual([line?.principal, line?.command, line?.destination], [user, 'SEND', '/queue/user.carol']);
      await s.client.deactivate();
    });
  });
}

/** A raw WebSocket speaking STOMP bytes as the test chooses; collects what comes back. */
async function raw(path: string, user: string): Promise<{ ws: WebSocket; got: string[]; until(pred: (all: string) => boolean): Promise<void>; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new WebSocket(gw.url(path), PROTOCOLS, { headers: { authorization: `Bearer ${await token(user)}` } });
  const got: string[] = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (d) => { got.push(String(d)); if (process.env.STOMP_DEBUG) console.log('<<', JSON.stringify(String(d))); for (const w of waiters) w(); });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return {
    ws, got, closed,
    until: (pred) => new Promise<void>((resolve) => {
      const check = (): void => { if (pred(got.join(''))) resolve(); };
      waiters.push(check);
      check();
    }),
  };
}

const CONNECT = 'CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0';

describe('STOMP inspection: RabbitMQ queue arguments', () => {
  // RabbitMQ declares a /queue/ destination on SEND and SUBSCRIBE with queue arguments from the frame's
  // headers: a dead-letter exchange and routing key would route the client's messages (expired at once
  // by x-message-ttl:0) to a destination it may not send to.
  it('x-dead-letter-exchange and x-dead-letter-routing-key are refused on SEND and SUBSCRIBE; nothing reaches a room the client may not send to', { timeout: 60_000 }, async () => {
    const room43 = await stomp('/tcp', 'bob', { room: '43' });
    const listener = await subscribe(room43, '/exchange/amq.topic/room.43');
    const leaked = listener.message.then((m) => `leaked: ${m.body}`);
    const dlx = { 'x-dead-letter-exchange': 'amq.topic', 'x-dead-letter-routing-key': 'room.43', 'x-message-ttl': '0' };
    const queues: string[] = [];
    for (const command of ['SEND', 'SUBSCRIBE']) {
      const id = `eve-${randomBytes(4).toString('hex')}`;
      queues.push(`user.${id}`);
      const s = await stomp('/guest', id);
      if (command === 'SEND') s.client.publish({ destination: `/queue/user.${id}`, body: 'to room 43', headers: dlx });
      else s.client.subscribe(`/queue/user.${id}`, () => {}, dlx);
      const outcome = await Promise.race([s.closed.then((c) => `${c.code} ${c.reason}`), leaked]);
      assert.equal(outcome, '1008 stomp_header_refused', command);
      assert.equal(s.errors[0]?.headers.message, 'x-dead-letter-exchange is not allowed', command);
      await s.client.deactivate();
    }
    // One look at the broker (each rabbitmqctl call starts an Erlang VM).
    const declared = await broker.queues();
    assert.deepEqual(queues.filter((q) => declared.includes(q)), [], 'the broker never declared the queues');
    await room43.client.deactivate();
  });
});

describe('STOMP inspection: frames in any split', () => {
  it('one byte per WebSocket message, many frames per message, heart-beats between: same frames, ACL still checked', { timeout: 30_000 }, async () => {
    const c = await raw('/ws', 'alice');
    for (const byte of Buffer.from(CONNECT)) c.ws.send(Buffer.from([byte]).toString('latin1'));
    await c.until((all) => all.startsWith('CONNECTED\n'));
    const q = '/queue/user.alice';
    c.ws.send(`\n\nSUBSCRIBE\nid:1\ndestination:${q}\nreceipt:s1\n\n\0\n`);
    await c.until((all) => all.includes('receipt-id:s1'));
    // Two SENDs: the first and the start of the second in one message, EOLs between them, the rest in two more; then a heart-beat alone.
    const first = `SEND\ndestination:${q}\ncontent-type:text/plain\n\none\0`;
    const second = `SEND\ndestination:${q}\ncontent-length:5\n\nt\0w\0o\0`;
    c.ws.send(`${first}\r\n${second.slice(0, 20)}`);
    c.ws.send(second.slice(20, 30));
    c.ws.send(`${second.slice(30)}\n`);
    c.ws.send('\n');
    await c.until((all) => (all.match(/MESSAGE\n/g) ?? []).length === 2);
    const messages = c.got.filter((m) => m.startsWith('MESSAGE\n'));
    assert.equal(messages.length, 2, 'one frame per message toward the client');
    assert.ok(messages[0].endsWith('\n\none\0') || messages[0].includes('\n\none\0'), messages[0]);
    assert.ok(messages[1].includes('t\0w\0o\0'), 'a body with NUL, by content-length');
    // A forbidden SEND split one byte per message is refused all the same.
    for (const byte of Buffer.from('SEND\ndestination:/queue/other\n\nx\0')) c.ws.send(Buffer.from([byte]).toString('latin1'));
    const { code } = await c.closed;
    assert.equal(code, 1008);
    assert.ok(c.got.some((m) => m.startsWith('ERROR\n') && m.includes('message:send not allowed')));
  });
});

describe('STOMP inspection: bad input', () => {
  it('a first frame that is not CONNECT: ERROR, close 1002, nothing reaches the broker', { timeout: 30_000 }, async () => {
    const queue = `early-${randomBytes(4).toString('hex')}`;
    const c = await raw('/ws', 'alice');
    c.ws.send(`SEND\ndestination:/queue/${queue}\n\nx\0`);
    assert.deepEqual(await c.closed, { code: 1002, reason: 'stomp_connect_expected' });
    assert.ok(c.got[0]?.startsWith('ERROR\nmessage:CONNECT must come first\n'), c.got[0]);
    assert.ok(!(await broker.queues()).includes(queue));
  });

  it('malformed frames: ERROR with a message header, close 1002; a second CONNECT too; over a limit 1009', { timeout: 30_000 }, async () => {
    const cases: Array<[string, number, string]> = [
      ['BOGUS\n\n\0', 1002, 'stomp_unknown_command'],
      ['SEND\ndestination:/queue/user.alice\nx:\\t\n\n\0', 1002, 'stomp_bad_escape'],
      ['SEND\ndestination:/queue/user.alice\ndestination:/queue/support\n\n\0', 1002, 'stomp_repeated_header'],
      [CONNECT, 1002, 'stomp_repeated_connect'],
      [`SEND\ndestination:/queue/user.alice\nx:${'v'.repeat(5000)}\n\n\0`, 1009, 'stomp_header_too_long'],
    ];
    for (const [frame, code, reason] of cases) {
      const c = await raw('/ws', 'alice');
      c.ws.send(CONNECT);
      await c.until((all) => all.startsWith('CONNECTED'));
      c.ws.send(frame);
      assert.deepEqual(await c.closed, { code, reason }, reason);
      const error = c.got.find((m) => m.startsWith('ERROR\n'));
      assert.ok(error?.includes('\nmessage:'), `ERROR with message for ${reason}: ${error}`);
    }
  });

  it('each limit: ERROR with a message, close 1009 with its reason, audited and counted; the broker never saw the frame', { timeout: 60_000 }, async () => {
    const header = (i: number): string => `h${i}:${'v'.repeat(200)}\n`;
    const cases: Array<[string, string]> = [
      // max_frame 1 KiB: five 200-byte headers and a small body.
      [`SEND\ndestination:/queue/user.alice\n${[1, 2, 3, 4, 5].map(header).join('')}\nx\0`, 'stomp_frame_too_large'],
      // max_body 256: by content-length at once (the body never sent), and without it while reading.
      ['SEND\ndestination:/queue/user.alice\ncontent-length:300\n\n', 'stomp_body_too_large'],
      [`SEND\ndestination:/queue/user.alice\n\n${'b'.repeat(300)}\0`, 'stomp_body_too_large'],
      // max_headers 8: nine.
      [`SEND\ndestination:/queue/user.alice\n${Array.from({ length: 8 }, (_, i) => `h${i}:v\n`).join('')}\nx\0`, 'stomp_too_many_headers'],
      // max_header_line (default 4 KiB).
      [`SEND\ndestination:/queue/user.alice\nx:${'v'.repeat(5000)}\n\n\0`, 'stomp_header_too_long'],
    ];
    for (const [frame, reason] of cases) {
      const counter = { service: 'small', protocol: 'v12.stomp', reason };
      const before = gw.gateway.metrics.get('gatehouse_inspection_refusals_total', counter);
      const audits = gw.logs.filter((l) => l.audit && l.reason === reason).length;
      const c = await raw('/small', 'alice');
      c.ws.send(CONNECT);
      await c.until((all) => all.startsWith('CONNECTED'));
      c.ws.send('SUBSCRIBE\nid:1\ndestination:/queue/user.alice\nreceipt:s\n\n\0');
      await c.until((all) => all.includes('receipt-id:s'));
      // A frame within the limits passes (its MESSAGE comes back on the subscription; the broker's frames are held to them too).
      c.ws.send(`SEND\ndestination:/queue/user.alice\n\n${'k'.repeat(250)}\0`);
      await c.until((all) => all.includes('MESSAGE\n'));
      c.ws.send(frame);
      assert.deepEqual(await c.closed, { code: 1009, reason }, reason);
      assert.match(c.got.find((m) => m.startsWith('ERROR\n')) ?? '', /\nmessage:[^\n]+\n/, `${reason}: ERROR with a message`);
      assert.equal(c.got.filter((m) => m.startsWith('MESSAGE\n')).length, 1, `${reason}: the refused frame never reached the broker`);
      const lines = gw.logs.filter((l) => l.audit && l.reason === reason);
      assert.equal(lines.length, audits + 1, `${reason}: one audit line`);
      assert.equal(lines.at(-1)?.code, 1009, reason);
      assert.equal(lines.at(-1)?.principal, 'alice', reason);
      assert.equal(gw.gateway.metrics.get('gatehouse_inspection_refusals_total', counter), before + 1, `${reason}: counted`);
    }
  });

  it('no CONNECT within connect_timeout: ERROR, close 1008, audited', { timeout: 30_000 }, async () => {
    const c = await raw('/slow', 'alice');
    assert.deepEqual(await c.closed, { code: 1008, reason: 'stomp_connect_timeout' });
    assert.ok(c.got[0]?.startsWith('ERROR\nmessage:no CONNECT in time\n'), `an ERROR frame first: ${c.got[0]}`);
    assert.equal(auditFor('stomp_connect_timeout')?.command, 'CONNECT');
  });

  it('more subscriptions than max_subscriptions: ERROR, close 1008, audited', { timeout: 30_000 }, async () => {
    const s = await stomp('/tcp', 'alice');
    for (let i = 0; i < 4; i++) s.client.subscribe('/topic/news.sport', () => {});
    assert.deepEqual(await s.closed, { code: 1008, reason: 'stomp_too_many_subscriptions' });
    assert.equal(s.errors[0]?.headers.message, 'more than 3 subscriptions');
    assert.equal(auditFor('stomp_too_many_subscriptions')?.command, 'SUBSCRIBE');
    await s.client.deactivate();
  });

  it('on_violation: close — no ERROR frame for a refusal, only the close', { timeout: 30_000 }, async () => {
    const s = await stomp('/quiet', 'alice');
    s.client.subscribe('/queue/forbidden', () => {});
    assert.deepEqual(await s.closed, { code: 1008, reason: 'stomp_subscribe_denied' });
    assert.deepEqual(s.errors, []);
    await s.client.deactivate();
  });

  it('a broker that breaks the protocol: the client gets 1014, the broker is closed, the audit line says how; nothing malformed passed on', { timeout: 60_000 }, async () => {
    const reason = 'stomp_backend_protocol_error';
    /** One connection whose broker misbehaves: the close, what reached the client, the audit line, the counter. */
    const check = async (path: string, connect: string, detail: RegExp, passed: string[]): Promise<void> => {
      const service = path.slice(1);
      const counter = { service, protocol: 'v12.stomp', reason };
      const before = gw.gateway.metrics.get('gatehouse_inspection_refusals_total', counter);
      const audits = gw.logs.filter((l) => l.audit && l.reason === reason).length;
      const brokerClosed = once(badBrokerClosed, 'closed');
      const c = await raw(path, 'alice');
      c.ws.send(connect);
      assert.deepEqual(await c.closed, { code: 1014, reason }, connect);
      await brokerClosed;
      assert.deepEqual(c.got.map((m) => m.split('\n')[0]), passed, `${connect}: what reached the client`);
      const lines = gw.logs.filter((l) => l.audit && l.reason === reason);
      assert.equal(lines.length, audits + 1, `${connect}: one audit line`);
      assert.equal(lines.at(-1)?.service, service);
      assert.equal(lines.at(-1)?.direction, 'to_client');
      assert.equal(lines.at(-1)?.code, 1014);
      assert.match(String(lines.at(-1)?.detail), detail, connect);
      assert.equal(gw.gateway.metrics.get('gatehouse_inspection_refusals_total', counter), before + 1, `${connect}: counted`);
    };
    const cases: Array<[string, RegExp, string[]]> = [
      ['bad-escape', /stomp_bad_escape/, ['CONNECTED']],
      ['message-first', /MESSAGE before CONNECTED/, []],
      ['unknown-command', /stomp_unknown_command/, ['CONNECTED']],
      ['client-command', /stomp_unknown_command/, ['CONNECTED']],
      ['version-not-offered', /version "9.9" was not offered/, []],
      ['second-connected', /a second CONNECTED/, ['CONNECTED']],
      ['content-length-short', /no NUL after content-length/, ['CONNECTED']],
      ['frame-too-large', /stomp_frame_too_large/, ['CONNECTED']],
      ['body-too-large', /stomp_body_too_large/, ['CONNECTED']],
      ['too-many-headers', /stomp_too_many_headers/, ['CONNECTED']],
    ];
    for (const [host, detail, passed] of cases) await check('/bad', `CONNECT\naccept-version:1.2\nhost:${host}\n\n\0`, detail, passed);
    await check('/bad-ws', CONNECT, /stomp_unknown_command/, ['CONNECTED']);
    // Other connections are unaffected: one to the real broker works after all that.
    const s = await stomp('/tcp', 'alice');
    const own = await subscribe(s, '/queue/user.alice');
    s.client.publish({ destination: '/queue/user.alice', body: 'still here' });
    assert.equal((await own.message).body, 'still here');
    await s.client.deactivate();
  });
});

describe('STOMP inspection: a broker that closes', () => {
  it('unasked: the client gets 1014, audited stomp_backend_closed; after its ERROR frame or the client\'s DISCONNECT: a normal close', { timeout: 60_000 }, async () => {
    const closeAfter = async (host: string, then?: string): Promise<{ code: number; reason: string }> => {
      const brokerClosed = once(badBrokerClosed, 'closed');
      const c = await raw('/bad', 'alice');
      c.ws.send(`CONNECT\naccept-version:1.2\nhost:${host}\n\n\0`);
      if (then !== undefined) {
        await c.until((all) => all.startsWith('CONNECTED'));
        c.ws.send(then);
      }
      const closed = await c.closed;
      await brokerClosed;
      return closed;
    };
    const counter = { service: 'bad', protocol: 'v12.stomp', reason: 'stomp_backend_closed' };
    const before = gw.gateway.metrics.get('gatehouse_inspection_refusals_total', counter);
    assert.deepEqual(await closeAfter('hang-up'), { code: 1014, reason: 'stomp_backend_closed' });
    const line = gw.logs.findLast((l) => l.audit && l.reason === 'stomp_backend_closed');
    assert.deepEqual([line?.service, line?.direction, line?.code, line?.principal], ['bad', 'to_client', 1014, 'alice']);
    assert.equal(gw.gateway.metrics.get('gatehouse_inspection_refusals_total', counter), before + 1, 'counted');
    assert.equal((await closeAfter('error-then-close')).code, 1000, 'after an ERROR frame the broker may close');
    assert.equal((await closeAfter('close-on-disconnect', 'DISCONNECT\nreceipt:bye\n\n\0')).code, 1000, 'after the client\'s DISCONNECT too');
    assert.equal(gw.gateway.metrics.get('gatehouse_inspection_refusals_total', counter), before + 1, 'those two are not faults');
  });
});

describe('STOMP inspection: values from the identity are literal', () => {
  // Through the /guest service (the client's own guest login passes): ids that are not broker users.
  // Allowed: the frame reached the broker, which answered it (RECEIPT, or its own ERROR for a name it
  // cannot use: RabbitMQ allows no `/` in a queue name). Refused: the gateway's ERROR and close 1008.
  const cases: Array<[string, string[], string[]]> = [
    ['*', [], ['/topic/user.*', '/topic/user.alice', '/queue/user.*']],
    ['**', ['/queue/user.**'], ['/topic/user.alice', '/topic/user.a.b']],
    ['a.b', ['/queue/user.a.b', '/topic/user.a.b'], ['/queue/user.a', '/topic/user.a.*', '/topic/user.a.#']],
    ['../x', ['/queue/user.../x'], ['/queue/x', '/queue/user.x', '/queue/user..']],
  ];
  for (const [id, allowed, refused] of cases) {
    it(`principal ${JSON.stringify(id)} reaches only its own name`, { timeout: 60_000 }, async () => {
      for (const destination of [...allowed, ...refused]) {
        const s = await stomp('/guest', id);
        const answer = new Promise<string>((resolve) => {
          s.client.watchForReceipt('r', () => resolve('RECEIPT'));
          s.client.onStompError = (f) => resolve(`ERROR ${f.headers.message}`);
        });
        s.client.subscribe(destination, () => {}, { receipt: 'r' });
        const got = await answer;
        if (allowed.includes(destination)) {
          assert.ok(got === 'RECEIPT' || got === 'ERROR Invalid destination', `${destination} reached the broker: ${got}`);
        } else {
          assert.equal(got, 'ERROR subscription not allowed', destination);
          assert.deepEqual(await s.closed, { code: 1008, reason: 'stomp_subscribe_denied' }, destination);
        }
        await s.client.deactivate();
      }
    });
  }
});

/** A STOMP client straight to the broker (guest), for publishing what the test needs; each send waits for its RECEIPT. */
async function brokerPublisher(): Promise<{ send(destination: string, body: string): Promise<void>; end(): void }> {
  const socket = net.connect(broker.stompPort, '127.0.0.1');
  let got = '';
  const waiters: Array<() => void> = [];
  socket.on('data', (d) => { got += d.toString(); for (const w of waiters) w(); });
  const until = (text: string): Promise<void> => new Promise((resolve) => {
    const check = (): void => { if (got.includes(text)) resolve(); };
    waiters.push(check);
    check();
  });
  socket.write('CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\n\n\0');
  await until('CONNECTED');
  let n = 0;
  return {
    // persistent: the RECEIPT comes once the broker has the message in every queue it routes to.
    send: async (destination, body) => {
      const receipt = `p${++n}`;
      socket.write(`SEND\ndestination:${destination}\npersistent:true\nreceipt:${receipt}\n\n${body}\0`);
      await until(`receipt-id:${receipt}\n`);
    },
    end: () => socket.destroy(),
  };
}

/** The gateway's name for a principal's durable subscription queue (docs/inspection.md). */
function durableQueue(principal: string, destination: string, id: string): string {
  return `stomp-subscription-${createHash('sha256').update(JSON.stringify([principal, destination, id])).digest('base64url')}`;
}

describe('STOMP inspection: durable subscriptions are bound to the principal', () => {
  it('two users on the same destination with the same id get queues of their own; a durable UNSUBSCRIBE deletes only its own; x-queue-name on UNSUBSCRIBE is refused', { timeout: 120_000 }, async () => {
    const topic = `/topic/news.durable${randomBytes(3).toString('hex')}`;
    const durable = (command: string, receipt: string, more = ''): string => `${command}\nid:shared\ndestination:${topic}\ndurable:true\nauto-delete:false\nreceipt:${receipt}\n${more}\n\0`;
    const messages = (c: { got: string[] }): string[] => c.got.filter((m) => m.startsWith('MESSAGE\n')).map((m) => m.slice(m.indexOf('\n\n') + 2, -1));
    const session = async (user: string): Promise<Awaited<ReturnType<typeof raw>>> => {
      const c = await raw('/tcp', user);
      c.ws.send(CONNECT);
      await c.until((all) => all.startsWith('CONNECTED'));
      return c;
    };
    const publisher = await brokerPublisher();
    try {
      // alice subscribes durably and goes away: her queue keeps what is published meanwhile.
      const alice = await session('alice');
      // Acknowledged by the client: a message the broker hands her closing session goes back to the queue, not lost.
      alice.ws.send(durable('SUBSCRIBE', 'a1', 'ack:client-individual\n'));
      await alice.until((all) => all.includes('receipt-id:a1'));
      alice.ws.close();
      await alice.closed;
      await publisher.send(topic, 'for alice');
      // bob asks for the same durable subscription: same destination, same id.
      const bob = await session('bob');
      bob.ws.send(durable('SUBSCRIBE', 'b1'));
      await bob.until((all) => all.includes('receipt-id:b1'));
      await publisher.send(topic, 'marker');
      await bob.until((all) => all.includes('\n\nmarker\0'));
      assert.deepEqual(messages(bob), ['marker'], 'bob reads his own queue, never alice\'s');
      // alice comes back and finds her queue with what she missed.
      const alice2 = await session('alice');
      alice2.ws.send(durable('SUBSCRIBE', 'a2'));
      await alice2.until((all) => all.includes('\n\nmarker\0'));
      assert.deepEqual(messages(alice2), ['for alice', 'marker'], 'the durable subscription kept alice\'s messages for her');
      // bob deletes his durable subscription: his queue goes, alice's stays.
      bob.ws.send(durable('UNSUBSCRIBE', 'b2'));
      await bob.until((all) => all.includes('receipt-id:b2'));
      // An UNSUBSCRIBE naming a queue of its own choosing would have the broker delete that queue.
      const mallory = await session('bob');
      mallory.ws.send(`SUBSCRIBE\nid:x\ndestination:${topic}\nreceipt:m1\n\n\0`);
      await mallory.until((all) => all.includes('receipt-id:m1'));
      mallory.ws.send(`UNSUBSCRIBE\nid:x\ndurable:true\nx-queue-name:${durableQueue('alice', topic, 'shared')}\n\n\0`);
      assert.deepEqual(await mallory.closed, { code: 1008, reason: 'stomp_header_refused' });
      const queues = (await broker.queues()).filter((q) => q.startsWith('stomp-subscription-'));
      assert.ok(queues.includes(durableQueue('alice', topic, 'shared')), `alice's queue is named for her and still there: ${queues.join(', ')}`);
      assert.ok(!queues.includes(durableQueue('bob', topic, 'shared')), 'bob\'s queue was deleted');
      alice2.ws.send(durable('UNSUBSCRIBE', 'a3'));
      await alice2.until((all) => all.includes('receipt-id:a3'));
      for (const c of [alice2, bob]) c.ws.close();
    } finally {
      publisher.end();
    }
  });

  it('another user allowed every queue by name can neither read, take nor fill a durable subscription\'s queue: /amq/queue/, /queue/ and the default exchange naming it are refused', { timeout: 30_000 }, async () => {
    const topic = `/topic/news.kept${randomBytes(3).toString('hex')}`;
    const queue = durableQueue('alice', topic, 'mine');
    // Acknowledged by the client: a message the broker hands a closing session goes back to the queue, not lost.
    const durable = (command: string, receipt: string): string => `${command}\nid:mine\ndestination:${topic}\ndurable:true\nauto-delete:false\nack:client-individual\nreceipt:${receipt}\n\n\0`;
    const session = async (path: string, user: string): Promise<Awaited<ReturnType<typeof raw>>> => {
      const c = await raw(path, user);
      c.ws.send(CONNECT);
      await c.until((all) => all.startsWith('CONNECTED'));
      return c;
    };
    const publisher = await brokerPublisher();
    try {
      const alice = await session('/tcp', 'alice');
      alice.ws.send(durable('SUBSCRIBE', 'a1'));
      await alice.until((all) => all.includes('receipt-id:a1'));
      alice.ws.close();
      await alice.closed;
      await publisher.send(topic, 'for alice');
      for (const frame of [
        `SUBSCRIBE\nid:1\ndestination:/amq/queue/${queue}\nreceipt:b\n\n\0`,
        `SUBSCRIBE\nid:1\ndestination:/queue/${queue}\nreceipt:b\n\n\0`,
        `SEND\ndestination:/exchange/amq.default/${queue}\nreceipt:b\n\nforged\0`,
        `SEND\ndestination:/amq/queue/${queue}\nreceipt:b\n\nforged\0`,
      ]) {
        const bob = await session('/wide', 'bob');
        bob.ws.send(frame);
        assert.deepEqual(await bob.closed, { code: 1008, reason: 'stomp_subscription_queue_refused' }, frame.split('\n').slice(0, 2).join(' '));
      }
      const alice2 = await session('/tcp', 'alice');
      alice2.ws.send(durable('SUBSCRIBE', 'a2'));
      await alice2.until((all) => all.includes('\n\nfor alice\0'));
      const kept = alice2.got.filter((m) => m.startsWith('MESSAGE\n')).map((m) => m.slice(m.indexOf('\n\n') + 2, -1));
      assert.deepEqual(kept, ['for alice'], 'alice\'s queue kept her message, and nothing was put in it');
      alice2.ws.send(durable('UNSUBSCRIBE', 'a3'));
      await alice2.until((all) => all.includes('receipt-id:a3'));
      alice2.ws.close();
    } finally {
      publisher.end();
    }
  });
});
