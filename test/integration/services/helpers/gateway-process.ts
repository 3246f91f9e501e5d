/**
 * The gateway as a real child process (`gatehouse start --config file`), for
 * what only a process can show: its resident memory under load, and how it
 * answers SIGTERM and SIGHUP.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitForOutput } from './processes.js';

export interface GatewayProcess {
  child: ChildProcess;
  pid: number;
  port: number;
  configFile: string;
  url(path: string): string;
  /** Everything the process wrote so far (stdout + stderr). */
  output(): string;
  /** Resolves at the first output line matching `pattern` printed from now on. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (signal → null). */
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** `gatehouse start --config FILE`, from the TypeScript sources. */
export const CLI = ['--import', 'tsx', 'src/main.ts', 'start', '--config'];

/**
 * How long to wait for "listening" unless told: the process compiles the
 * sources through tsx first, which took over 20 s at load 25 (the backpressure
 * suite's starts timed out at the former 20 s). A deadline for an event, not a
 * pause: a process that listens sooner is used at once.
 */
export const START_TIMEOUT_MS = 90_000;

/** `startTimeoutMs`: how long to wait for "listening" (a primary forks workers, each loads the sources: slower on a busy machine). */
export async function startGatewayProcess(yaml: string, opts: { startTimeoutMs?: number } = {}): Promise<GatewayProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-proc-'));
  const configFile = join(dir, 'gatehouse.yaml');
  writeFileSync(configFile, yaml);
  const child = spawn(process.execPath, [...CLI, configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { out += c.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let m: RegExpMatchArray;
  try {
    m = await waitForOutput(child, /listening on https?:\/\/\S+:(\d+)\//, ['stderr'], opts.startTimeoutMs ?? START_TIMEOUT_MS);
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const port = Number(m[1]);
  return {
    child,
    pid: child.pid!,
    port,
    configFile,
    url: (path) => `ws://127.0.0.1:${port}${path}`,
    output: () => out,
    waitFor: (pattern, timeoutMs) => waitForOutput(child, pattern, ['stdout', 'stderr'], timeoutMs),
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
