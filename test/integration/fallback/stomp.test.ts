/**
 * The client library as `@stomp/stompjs`'s `webSocketFactory`, against a real
 * STOMP broker: a private RabbitMQ node (Debian's `rabbitmq-server`, its
 * Web-STOMP plugin) on free loopback ports, behind the real gateway's
 * `websocket` service. stompjs connects through `GatehouseSocket` over the HTTP
 * fallback and over WebSocket: CONNECT, SUBSCRIBE, SEND, MESSAGE, DISCONNECT,
 * with the STOMP text frames carried unchanged.
 *
 * The RabbitMQ node is the test's own: its node name, AMQP, distribution,
 * epmd and Web-STOMP ports, data, logs, config, enabled plugins and Erlang
 * cookie all live in a temp dir / on free ports; the system service is not used.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, type IFrame, type IMessage, type IStompSocket } from '@stomp/stompjs';
import { WebSocket } from 'ws';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { freePort } from '../services/helpers/processes.js';
import { GatehouseSocket } from '../../../client/src/index.js';
import { originKeys, TEST_LIMITS } from './stand-in-checks.js';

const STOMP_PROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'];

interface RabbitMq {
  /** Web-STOMP endpoint, ws://127.0.0.1:PORT/ws */
  wsUrl: string;
  stop(): Promise<void>;
}

/** Debian installs the real scripts here; /usr/sbin/rabbitmq-server would switch to the `rabbitmq` user and its /var/lib home. */
function rabbitBin(name: string): string {
  const p = `/usr/lib/rabbitmq/bin/${name}`;
  return existsSync(p) ? p : name;
}

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => { child.removeListener('exit', onExit); resolve(false); }, ms);
    const onExit = (): void => { clearTimeout(timer); resolve(true); };
    child.once('exit', onExit);
  });
}

async function startRabbitMq(): Promise<RabbitMq> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-rabbitmq-'));
  const home = join(dir, 'home');
  mkdirSync(home);
  const [amqpPort, distPort, epmdPort, stompPort, ctlPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const node = `gh${randomBytes(4).toString('hex')}@localhost`;
  writeFileSync(join(home, '.erlang.cookie'), randomBytes(20).toString('hex'), { mode: 0o400 });
  writeFileSync(join(dir, 'rabbitmq.conf'), [
    `listeners.tcp.default = 127.0.0.1:${amqpPort}`,
    `web_stomp.tcp.ip = 127.0.0.1`,
    `web_stomp.tcp.port = ${stompPort}`,
    // guest/guest is allowed from loopback by default; stompjs logs in as guest.
  ].join('\n') + '\n');
  writeFileSync(join(dir, 'enabled_plugins'), '[rabbitmq_web_stomp].\n');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(amqpPort),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_CTL_DIST_PORT_MIN: String(ctlPort),
    RABBITMQ_CTL_DIST_PORT_MAX: String(ctlPort),
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_PID_FILE: join(dir, 'rabbitmq.pid'),
  };
  // Its own process group, so that a fallback kill reaches everything it started but epmd (killed by port below).
  const child = spawn(rabbitBin('rabbitmq-server'), [], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  const keep = (c: Buffer): void => { output = (output + c.toString()).slice(-4000); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const spawnFailed = new Promise<{ code: number; out: string }>((resolve) => {
    child.once('error', (err) => resolve({ code: -1, out: `cannot run rabbitmq-server (Debian package rabbitmq-server; scripts/setup.sh installs it): ${err.message}` }));
  });

  const ctl = (args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> => new Promise((resolve) => {
    const p = spawn(rabbitBin('rabbitmqctl'), ['-n', node, ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    p.stderr.on('data', (c: Buffer) => { out += c.toString(); });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('error', (err) => { clearTimeout(timer); resolve({ code: -1, out: err.message }); });
    p.once('exit', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });

  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
      await exited(child, 5_000);
    }
    // The node's epmd runs on our private port; it outlives the node unless told.
    spawnSync('epmd', ['-port', String(epmdPort), '-kill'], { env, stdio: 'ignore', timeout: 5_000 });
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const ready = await Promise.race([
      // `wait` waits for the pid file the node writes, then for the broker and its plugins to be up.
      ctl(['wait', join(dir, 'rabbitmq.pid'), '--timeout', '60'], 70_000),
      exited(child, 70_000).then(() => ({ code: -1, out: 'rabbitmq-server exited' })),
      spawnFailed,
    ]);
    if (ready.code !== 0) throw new Error(`RabbitMQ did not start (${ready.out.trim()}):\n${output}`);
  } catch (err) {
    await kill();
    throw err;
  }
  return {
    wsUrl: `ws://127.0.0.1:${stompPort}/ws`,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        await ctl(['stop'], 20_000);
        await exited(child, 10_000);
      }
      await kill();
    },
  };
}

let broker: RabbitMq;
let gw: TestGateway;
before(async () => {
  broker = await startRabbitMq();
  gw = await startGateway({
    limits: TEST_LIMITS,
    services: {
      stomp: {
        path: '/stomp', type: 'websocket', backend: broker.wsUrl,
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
