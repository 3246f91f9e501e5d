/**
 * A real HAProxy (Debian's 2.6) in front of one or more gateways, in
 * `mode http` with its defaults unless told otherwise: the load balancer most
 * WebSocket fleets run. Its own config in a temp dir, free loopback ports,
 * foreground (`-db`), stopped by its pid. Never the system HAProxy.
 *
 * `balance roundrobin` with no stickiness: in HTTP mode HAProxy balances each
 * request on its own, so consecutive requests of one client (on one
 * keep-alive connection, too) reach different servers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../integration/services/helpers/processes.js';

export const HAPROXY = process.env.GATEHOUSE_HAPROXY ?? '/usr/sbin/haproxy';

export interface HaproxyOptions {
  /** Extra lines for the `defaults` section (e.g. `option http-no-delay`, `option http-server-close`). */
  options?: string[];
  /** `mode http` (default) or `mode tcp`. */
  mode?: 'http' | 'tcp';
}

export interface Haproxy {
  port: number;
  pid: number;
  /** http://127.0.0.1:PORT + path */
  httpUrl(path: string): string;
  /** ws://127.0.0.1:PORT + path */
  url(path: string): string;
  /** What HAProxy printed (warnings, alerts). */
  output(): string;
  stop(): Promise<void>;
}

export async function startHaproxy(backends: Array<{ host?: string; port: number }>, opts: HaproxyOptions = {}): Promise<Haproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-haproxy-'));
  const port = await freePort();
  const mode = opts.mode ?? 'http';
  const servers = backends.map((b, i) => `  server gw${i} ${b.host ?? '127.0.0.1'}:${b.port}`).join('\n');
  const config = `global
  maxconn 4096

defaults
  mode ${mode}
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout tunnel 1h
${(opts.options ?? []).map((o) => `  ${o}`).join('\n')}

frontend fe
  bind 127.0.0.1:${port}
  default_backend gateways

backend gateways
  balance roundrobin
${servers}
`;
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, config);
  const child: ChildProcess = spawn(HAPROXY, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d) => { out += d; });
  child.stderr?.on('data', (d) => { out += d; });
  try {
    await waitForListening(port, child, () => out);
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    pid: child.pid!,
    httpUrl: (path) => `http://127.0.0.1:${port}${path}`,
    url: (path) => `ws://127.0.0.1:${port}${path}`,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitForListening(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`haproxy exited (${child.exitCode}):\n${output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`haproxy did not start listening:\n${output()}`);
}
