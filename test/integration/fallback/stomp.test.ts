/**
 * The client library as `@stomp/stompjs`'s `webSocketFactory`, against a real
 * STOMP broker: a private RabbitMQ node (Debian's `rabbitmq-server`, its
 * Web-STOMP plugin) on free loopback ports, behind the real gateway's
 * `websocket` service. stompjs connects through `GatehouseSocket` over the HTTP
 * fallback and over WebSocket: CONNECT, SUBSCRIBE, SEND, MESSAGE, DISCONNECT,
 * with the STOMP text frames carried unchanged.
 *
 * The RabbitMQ node is the test's own (test/helpers/rabbitmq.ts): node name,
 * ports, data dir and cookie; the system service is not used.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Client, type IFrame, type IMessage, type IStompSocket } from '@stomp/stompjs';
import { WebSocket } from 'ws';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { startRabbitMq, type RabbitMq } from '../../helpers/rabbitmq.js';
import { GatehouseSocket } from '../../../client/src/index.js';
import { originKeys, TEST_LIMITS } from './stand-in-checks.js';

const STOMP_PROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'];

let broker: RabbitMq;
let gw: TestGateway;
before(async () => {
  broker = await startRabbitMq();
  gw = await startGateway({
    limits: TEST_LIMITS,
    services: {
      stomp: {
        path: '/stomp', type: 'websocket', backend: broker.webStompUrl,
        ...originKeys({ origins: [], allowMissing: true, subprotocols: STOMP_PROTOCOLS }),
      },
    },
  });
}, { timeout: 90_000 });
after(async () => {
  await gw?.stop();
  await broker?.stop();
}, { timeout: 60_000 });

/** A stompjs client on GatehouseSocket; resolves once CONNECTED. */
async function connect(transport: 'fallback' | 'websocket', sockets: GatehouseSocket[], received: Array<string | object>, debug: string[]): Promise<{ client: Client; connected: IFrame }> {
  const client = new Client({
    webSocketFactory: () => {
      const s = new GatehouseSocket(gw.url('/stomp'), STOMP_PROTOCOLS, { transport, WebSocket: WebSocket as never });
      // What the socket delivers to stompjs: STOMP over Web-STOMP is text frames.
      s.addEventListener('message', (e) => { received.push((e as MessageEvent).data as string | object); });
      sockets.push(s);
      return s as unknown as IStompSocket;
    },
    connectHeaders: { login: 'guest', passcode: 'guest', host: '/' },
    reconnectDelay: 0,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
    debug: (m) => { debug.push(m); },
  });
  const connected = await new Promise<IFrame>((resolve, reject) => {
    client.onConnect = resolve;
    client.onStompError = (f) => reject(new Error(`STOMP ERROR: ${f.headers.message} ${f.body}`));
    client.onWebSocketClose = (e: { code: number; reason: string }) => reject(new Error(`socket closed ${e.code} ${e.reason}\n${debug.join('\n')}`));
    client.activate();
  });
  client.onWebSocketClose = () => { /* expected from here on: at DISCONNECT */ };
  return { client, connected };
}

for (const transport of ['fallback', 'websocket'] as const) {
  test(`@stomp/stompjs with webSocketFactory → GatehouseSocket (${transport}) to RabbitMQ Web-STOMP: connect, subscribe, send, receive, disconnect`, { timeout: 30_000 }, async () => {
    const sockets: GatehouseSocket[] = [];
    const received: Array<string | object> = [];
    const debug: string[] = [];
    const sub = await connect(transport, sockets, received, debug);
    const pub = await connect(transport, sockets, received, debug);
    try {
      // The gateway offered the client's STOMP subprotocols to RabbitMQ, which chose v12.stomp; STOMP 1.2 was negotiated end to end.
      assert.deepEqual(sockets.map((s) => [s.transport, s.protocol]), [[transport, 'v12.stomp'], [transport, 'v12.stomp']]);
      assert.equal(sub.connected.headers.version, '1.2');
      assert.match(sub.connected.headers.server ?? '', /^RabbitMQ/);

      const destination = `/queue/gatehouse-${transport}-${randomBytes(4).toString('hex')}`;
      const messages: IMessage[] = [];
      // The SUBSCRIBE asks for a receipt, and nothing is sent before it arrives: the message cannot race the subscription.
      const subscribed = new Promise<void>((resolve) => sub.client.watchForReceipt('subscribed', () => resolve()));
      const got = new Promise<IMessage>((resolve) => {
        sub.client.subscribe(destination, (m) => { messages.push(m); resolve(m); }, { id: 'sub-0', ack: 'auto', receipt: 'subscribed' });
      });
      await subscribed;

      // Text with multi-byte UTF-8 and line breaks in the body, and a header value that STOMP 1.2 escapes
      // (`:` → `\c`, `\` → `\\`). Not a `\` before `c`/`n`/`r`: stompjs 7.5 unescapes `\c` before `\\`,
      // so `a:b\c` comes back from its own decoder as `a:b\:` even straight from RabbitMQ.
      const body = 'héllo, gatehouse ✓ — 日本語 🚀\nsecond line\r\n\ttabbed';
      const header = 'a:b\\d';
      pub.client.publish({ destination, body, headers: { 'x-gatehouse': header, 'content-type': 'text/plain' } });
      const m = await got;
      assert.equal(m.body, body);
      assert.equal(m.headers['x-gatehouse'], header);
      assert.equal(m.headers.destination, destination);
      assert.equal(messages.length, 1);
      // The MESSAGE frame as RabbitMQ wrote it reached stompjs as one text message, escapes and NUL terminator intact.
      const frame = received.find((d) => typeof d === 'string' && d.startsWith('MESSAGE\n')) as string | undefined;
      assert.ok(frame, 'a MESSAGE frame arrived as text');
      assert.ok(frame.includes('\nx-gatehouse:a\\cb\\\\d\n'), frame);
      // Body after the blank line, then NUL (RabbitMQ adds an EOL after it, which STOMP allows).
      assert.equal(frame.slice(frame.indexOf('\n\n') + 2).replace(/\n+$/, ''), `${body}\0`);
    } finally {
      await Promise.all([sub.client.deactivate(), pub.client.deactivate()]);
    }
    // DISCONNECT closed both sockets; every frame the sockets delivered was text.
    for (const s of sockets) assert.equal(s.readyState, GatehouseSocket.CLOSED);
    assert.ok(received.length >= 4, `CONNECTED ×2, RECEIPT, MESSAGE at least; got ${received.length}`);
    assert.deepEqual([...new Set(received.map((d) => typeof d))], ['string']);
  });
}
