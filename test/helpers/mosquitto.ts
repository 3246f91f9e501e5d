/**
 * A private Mosquitto for tests: its own temp dir and free ports, never the
 * system service, stopped by pid. Anonymous by default; with `users` and
 * `acl` it has its own password file and ACL file, so that the broker itself
 * refuses what the gateway might let through by mistake and accepts only the
 * credentials the gateway injects. A TCP listener and, optionally, a
 * WebSocket listener.
 *
 * The broker's own view is read from its log: which client id and user name
 * each connection authenticated as, and what it denied.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { freePort, waitForOutput } from '../integration/services/helpers/processes.js';

export interface MosquittoOptions {
  /** user name → password; anonymous clients are refused when given. */
  users?: Record<string, string>;
  /** Lines of the ACL file (mosquitto.conf(5) `acl_file`), e.g. `user alice` / `topic readwrite devices/alice/#`. */
  acl?: string[];
  /** Also listen for MQTT over WebSocket. */
  websockets?: boolean;
}

export interface BrokerConnection {
  clientId: string;
  username: string;
}

export interface Mosquitto {
  port: number;
  /** Port of the WebSocket listener (path `/`, subprotocol `mqtt`), when asked for. */
  wsPort?: number;
  pid: number;
  /** Connections the broker accepted so far, as it logged them. */
  connections(): BrokerConnection[];
  /** Resolves with the connection once the broker logs one with this client id. */
  connected(clientId: string, timeoutMs?: number): Promise<BrokerConnection>;
  /** Everything the broker logged. */
  log(): string;
  stop(): Promise<void>;
}

const CONNECTED = /New client connected from \S+ as (\S+) \([^)]*u'([^']*)'\)/g;

export async function startMosquitto(options: MosquittoOptions = {}): Promise<Mosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-mosquitto-'));
  const port = await freePort();
  const wsPort = options.websockets ? await freePort() : undefined;
  const conf = [
    // Per-listener settings: each listener has its own password and ACL files.
    'per_listener_settings false',
    // Started as root (CI), Mosquitto would switch to its own user, who cannot read this temp dir.
    ...(process.getuid?.() === 0 ? ['user root'] : []),
    `listener ${port} 127.0.0.1`,
  ];
  // Mosquitto's WebSocket listener binds every address whatever is asked; the
  // password file keeps strangers out of this one.
  if (wsPort) conf.push(`listener ${wsPort}`, 'protocol websockets');
  if (options.users) {
    const passwordFile = join(dir, 'passwords');
    writeFileSync(passwordFile, '', { mode: 0o600 });
    for (const [user, password] of Object.entries(options.users)) {
      const r = spawnSync('mosquitto_passwd', ['-b', passwordFile, user, password], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`mosquitto_passwd failed: ${r.stderr}`);
    }
    conf.push('allow_anonymous false', `password_file ${passwordFile}`);
  } else {
    conf.push('allow_anonymous true');
  }
  if (options.acl) {
    const aclFile = join(dir, 'acl');
    writeFileSync(aclFile, options.acl.join('\n') + '\n', { mode: 0o600 });
    conf.push(`acl_file ${aclFile}`);
  }
  conf.push('log_dest stderr', 'log_type error', 'log_type warning', 'log_type notice', 'log_type information', 'log_type debug', 'connection_messages true');
  const confFile = join(dir, 'mosquitto.conf');
  writeFileSync(confFile, conf.join('\n') + '\n');
  const child = spawn('mosquitto', ['-c', confFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stderr.on('data', (c: Buffer) => { text += c.toString(); });
  child.stdout.on('data', (c: Buffer) => { text += c.toString(); });
  try {
    await waitForOutput(child, /mosquitto version \S+ running/);
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const connections = (): BrokerConnection[] => [...text.matchAll(CONNECTED)].map((m) => ({ clientId: m[1], username: m[2] }));
  return {
    port,
    wsPort,
    pid: child.pid!,
    connections,
    log: () => text,
    connected(clientId, timeoutMs = 5_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          child.stderr.off('data', check);
          reject(new Error(`the broker logged no connection of ${clientId}; its log:\n${text.slice(-3000)}`));
        }, timeoutMs);
        // Registered after the collector above, so `text` already holds the new bytes.
        function check(): void {
          const found = connections().find((c) => c.clientId === clientId);
          if (!found) return;
          clearTimeout(timer);
          child.stderr.off('data', check);
          resolve(found);
        }
        child.stderr.on('data', check);
        check();
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A client connected to the broker directly, subscribed to everything: what was published, in order. */
export interface BrokerObserver {
  client: MqttClient;
  /** Resolves once `entry` (`topic payload`) was published; returns what was published up to it, and forgets it. */
  observed(entry: string): Promise<string[]>;
  end(): Promise<void>;
}

/** Connect an observer as `username` (whose ACL must allow reading `#`). */
export async function observeBroker(broker: Mosquitto, username: string, password: string): Promise<BrokerObserver> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { clientId: username, username, password, reconnectPeriod: 0 });
  const seen: string[] = [];
  client.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`));
  await client.subscribeAsync('#');
  return {
    client,
    observed: (entry) => new Promise((resolve) => {
      const check = (): void => {
        const i = seen.indexOf(entry);
        if (i < 0) return;
        client.removeListener('message', check);
        resolve(seen.splice(0, i + 1));
      };
      client.on('message', check);
      check();
    }),
    end: () => client.endAsync(),
  };
}
