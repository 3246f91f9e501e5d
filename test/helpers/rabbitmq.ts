/**
 * A private RabbitMQ node for a test file (Debian's `rabbitmq-server`) with
 * the STOMP plugins: `rabbitmq_stomp` (STOMP over TCP) and
 * `rabbitmq_web_stomp` (STOMP over WebSocket). Start it once per file, in
 * `before`; it takes a few seconds.
 *
 * Everything is the test's own: node name, AMQP, distribution, epmd, CLI,
 * STOMP and Web-STOMP ports (free loopback ports), data, logs, config,
 * enabled plugins and Erlang cookie (a temp dir). The system service is never
 * used or touched; `stop` ends only the processes this helper started (its
 * process group, and the epmd on its private port).
 *
 * The broker's own view of who is connected (`sessionUsers()`: STOMP
 * sessions, over TCP and WebSocket alike, run on AMQP channels, which
 * `rabbitmqctl list_channels` lists with the user each authenticated as; they
 * are not in `list_connections`) and of what exists (`queues()`, `bindings()`)
 * lets a test check what reached the broker from the broker's side.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../integration/services/helpers/processes.js';

export interface RabbitMq {
  /** rabbitmq_stomp's TCP port on 127.0.0.1. */
  stompPort: number;
  /** tcp://127.0.0.1:PORT, a `tcp` service's backend. */
  stompUrl: string;
  /** ws://127.0.0.1:PORT/ws, rabbitmq_web_stomp's endpoint, a `websocket` service's backend. */
  webStompUrl: string;
  /** Run `rabbitmqctl` against this node; rejects when it fails. Each call starts an Erlang VM (about a second). */
  ctl(args: string[], timeoutMs?: number): Promise<string>;
  /** A user with full permissions on vhost `/`. */
  addUser(name: string, password: string): Promise<void>;
  /** The user each open STOMP session (one AMQP channel each) authenticated as, from the broker. */
  sessionUsers(): Promise<string[]>;
  /** Queue names on vhost `/`. */
  queues(): Promise<string[]>;
  /** Bindings on vhost `/`: source exchange, destination and routing key. */
  bindings(): Promise<Array<{ source: string; destination: string; routingKey: string }>>;
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

interface Ports { amqp: number; dist: number; epmd: number; ctl: number; stomp: number; webStomp: number }

function nodeEnv(dir: string, node: string, ports: Ports): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HOME: join(dir, 'home'),
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(ports.amqp),
    RABBITMQ_DIST_PORT: String(ports.dist),
    RABBITMQ_CTL_DIST_PORT_MIN: String(ports.ctl),
    RABBITMQ_CTL_DIST_PORT_MAX: String(ports.ctl),
    ERL_EPMD_PORT: String(ports.epmd),
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
}

function writeNodeFiles(dir: string, ports: Ports): void {
  mkdirSync(join(dir, 'home'));
  writeFileSync(join(dir, 'home', '.erlang.cookie'), randomBytes(20).toString('hex'), { mode: 0o400 });
  writeFileSync(join(dir, 'rabbitmq.conf'), [
    `listeners.tcp.default = 127.0.0.1:${ports.amqp}`,
    `stomp.listeners.tcp.1 = 127.0.0.1:${ports.stomp}`,
    `web_stomp.tcp.ip = 127.0.0.1`,
    `web_stomp.tcp.port = ${ports.webStomp}`,
    // guest/guest may log in from loopback (the default); tests add their own users.
  ].join('\n') + '\n');
  writeFileSync(join(dir, 'enabled_plugins'), '[rabbitmq_stomp,rabbitmq_web_stomp].\n');
}

/** Rows of a `rabbitmqctl list_*` answer (run with --no-table-headers --quiet): tab-separated fields. */
function rows(out: string): string[][] {
  return out.split('\n').filter((l) => l.trim() !== '').map((l) => l.split('\t'));
}

export async function startRabbitMq(): Promise<RabbitMq> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-rabbitmq-'));
  const ports: Ports = {
    amqp: await freePort(), dist: await freePort(), epmd: await freePort(),
    ctl: await freePort(), stomp: await freePort(), webStomp: await freePort(),
  };
  const node = `gh${randomBytes(4).toString('hex')}@localhost`;
  writeNodeFiles(dir, ports);
  const env = nodeEnv(dir, node, ports);
  // Its own process group, so that a fallback kill reaches everything it started but epmd (killed by port below).
  const child = spawn(rabbitBin('rabbitmq-server'), [], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  const keep = (c: Buffer): void => { output = (output + c.toString()).slice(-4000); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const spawnFailed = new Promise<{ code: number; out: string }>((resolve) => {
    child.once('error', (err) => resolve({ code: -1, out: `cannot run rabbitmq-server (Debian package rabbitmq-server; scripts/setup.sh installs it): ${err.message}` }));
  });

  const run = (args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> => new Promise((resolve) => {
    const p = spawn(rabbitBin('rabbitmqctl'), ['-n', node, ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    p.stderr.on('data', (c: Buffer) => { out += c.toString(); });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('error', (err) => { clearTimeout(timer); resolve({ code: -1, out: err.message }); });
    p.once('exit', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
  // Each rabbitmqctl call boots an Erlang VM: a few seconds on a quiet machine,
  // over 30 s at load 25 on 2 cores (seen). Generous, so a busy machine is slow, not red.
  const ctl = async (args: string[], timeoutMs = 90_000): Promise<string> => {
    const r = await run(args, timeoutMs);
    if (r.code !== 0) throw new Error(`rabbitmqctl ${args.join(' ')} failed (${r.code}): ${r.out.trim()}`);
    return r.out;
  };
  const list = (what: string, fields: string[]): Promise<string[][]> =>
    ctl([what, '--no-table-headers', '--quiet', ...fields]).then(rows);

  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
      await exited(child, 5_000);
    }
    // The node's epmd runs on our private port; it outlives the node unless told.
    spawnSync('epmd', ['-port', String(ports.epmd), '-kill'], { env, stdio: 'ignore', timeout: 5_000 });
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const ready = await Promise.race([
      // `wait` waits for the pid file the node writes, then for the broker and its plugins to be up.
      run(['wait', join(dir, 'rabbitmq.pid'), '--timeout', '60'], 70_000),
      exited(child, 70_000).then(() => ({ code: -1, out: 'rabbitmq-server exited' })),
      spawnFailed,
    ]);
    if (ready.code !== 0) throw new Error(`RabbitMQ did not start (${ready.out.trim()}):\n${output}`);
  } catch (err) {
    await kill();
    throw err;
  }
  return {
    stompPort: ports.stomp,
    stompUrl: `tcp://127.0.0.1:${ports.stomp}`,
    webStompUrl: `ws://127.0.0.1:${ports.webStomp}/ws`,
    ctl,
    addUser: async (name, password) => {
      await ctl(['add_user', name, password]);
      await ctl(['set_permissions', '-p', '/', name, '.*', '.*', '.*']);
    },
    sessionUsers: async () => (await list('list_channels', ['user'])).map(([user]) => user),
    queues: async () => (await list('list_queues', ['name'])).map(([name]) => name),
    bindings: async () => (await list('list_bindings', ['source_name', 'destination_name', 'routing_key']))
      .map(([source, destination, routingKey]) => ({ source, destination, routingKey })),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        await run(['stop'], 20_000);
        await exited(child, 10_000);
      }
      await kill();
    },
  };
}
