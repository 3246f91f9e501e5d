/**
 * Helpers for the real servers tests start: a free port, waiting for a
 * child's output, a child process's resident memory from /proc. (Mosquitto:
 * test/helpers/mosquitto.ts.)
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';

/** A port nobody listens on right now (bind 0, read it, release it). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** Resolves when `stream` has printed a line matching `pattern`; rejects if the process exits first. */
export function waitForOutput(child: ChildProcess, pattern: RegExp, streams: Array<'stdout' | 'stderr'> = ['stdout', 'stderr'], timeoutMs = 10_000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => finish(new Error(`timed out waiting for ${pattern} in output:\n${seen.slice(-2000)}`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString();
      const m = pattern.exec(seen);
      if (m) finish(undefined, m);
    };
    const onExit = (code: number | null): void => finish(new Error(`process exited (${code}) before printing ${pattern}:\n${seen.slice(-2000)}`));
    for (const s of streams) child[s]?.on('data', onData);
    child.once('exit', onExit);
    function finish(err?: Error, m?: RegExpMatchArray): void {
      clearTimeout(timer);
      for (const s of streams) child[s]?.removeListener('data', onData);
      child.removeListener('exit', onExit);
      if (err) reject(err); else resolve(m!);
    }
  });
}

/** Resident set size of a process in bytes (VmRSS from /proc). */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}
