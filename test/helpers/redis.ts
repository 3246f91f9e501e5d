/**
 * A private Redis for a test file (Debian's `redis-server`): its own free
 * loopback port, its own temp dir (no persistence: no RDB, no AOF), run in the
 * foreground and stopped by its pid. The system Redis is never used or
 * touched. Start it once per file, in `before`; it starts in milliseconds.
 *
 * `command` speaks RESP over a plain socket, so assertions can look at
 * Redis's own view without going through the client library under test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForOutput } from '../integration/services/helpers/processes.js';

export const REDIS_SERVER = process.env.GATEHOUSE_REDIS_SERVER ?? '/usr/bin/redis-server';

export interface Redis {
  port: number;
  /** redis://127.0.0.1:PORT/0 */
  url: string;
  pid: number;
  /** One command; resolves with the reply (errors reject). */
  command(...args: string[]): Promise<RespValue>;
  /** Ends the server (SIGTERM, waits for its exit) and removes its dir. */
  stop(): Promise<void>;
  /** SIGSTOP / SIGCONT: a Redis that hangs without closing its sockets. */
  freeze(): void;
  thaw(): void;
}

export type RespValue = string | number | null | RespValue[];

/** `port`: a given one (to start a Redis again where a stopped one was); else a free one. */
export async function startRedis(opts: { port?: number } = {}): Promise<Redis> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-redis-'));
  const port = opts.port ?? await freePort();
  const child: ChildProcess = spawn(REDIS_SERVER, [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
    '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'yes',
    '--loglevel', 'notice', '--logfile', '',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    await waitForOutput(child, /Ready to accept connections/);
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    pid: child.pid!,
    command: (...args) => respCommand(port, args),
    freeze: () => { child.kill('SIGSTOP'); },
    thaw: () => { child.kill('SIGCONT'); },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGCONT');
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One RESP command over a fresh connection (test assertions only: not fast, not pipelined). */
export function respCommand(port: number, args: string[], timeoutMs = 5000): Promise<RespValue> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`redis ${args[0]} timed out`)); }, timeoutMs);
    sock.on('error', (err) => { clearTimeout(timer); reject(err); });
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const parsed = parseResp(buf, 0);
      if (!parsed) return;
      clearTimeout(timer);
      sock.destroy();
      if (parsed.value instanceof Error) reject(parsed.value); else resolve(parsed.value);
    });
    let out = `*${args.length}\r\n`;
    for (const a of args) out += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
    sock.write(out);
  });
}

function parseResp(buf: Buffer, at: number): { value: RespValue | Error; end: number } | undefined {
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return undefined;
  const kind = String.fromCharCode(buf[at]);
  const line = buf.toString('utf8', at + 1, eol);
  switch (kind) {
    case '+': return { value: line, end: eol + 2 };
    case '-': return { value: new Error(line), end: eol + 2 };
    case ':': return { value: Number(line), end: eol + 2 };
    case '$': {
      const n = Number(line);
      if (n < 0) return { value: null, end: eol + 2 };
      if (buf.length < eol + 2 + n + 2) return undefined;
      return { value: buf.toString('utf8', eol + 2, eol + 2 + n), end: eol + 2 + n + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, end: eol + 2 };
      const items: RespValue[] = [];
      let end = eol + 2;
      for (let i = 0; i < n; i++) {
        const item = parseResp(buf, end);
        if (!item) return undefined;
        if (item.value instanceof Error) return item;
        items.push(item.value);
        end = item.end;
      }
      return { value: items, end };
    }
    default: return { value: new Error(`unexpected RESP type ${kind}`), end: buf.length };
  }
}
