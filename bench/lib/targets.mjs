/**
 * The servers under test ("targets") and how to start them.
 *
 * Every target is a separate Node process started the same way
 * (`node [nodeArgs] script ...`, so its pid is the process we measure),
 * listening on 127.0.0.1 on a free port, with its WebSocket echo at /echo.
 * A target is ready when a TCP connect to its port succeeds.
 *
 * Targets:
 *   gatehouse — `node bin/gatehouse.js start --config <generated YAML>` (needs `npm run build`)
 *   ws        — `node bench/servers/ws-echo.mjs` (npm `ws`, default options)
 *   bare      — `node bench/servers/bare-relay.mjs` in front of `opts.backendPort`: two sockets
 *               piped, no parsing (the proxy suite's floor for a Node process in the path)
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, minorFaults, rssKiB } from './proc.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const HOST = '127.0.0.1';
export const ECHO_PATH = '/echo';

/**
 * Extra keys for the benchmark's `echo` service in the Gatehouse config.
 *
 * >>> When per-connection / per-service message-rate limits (or any other
 * >>> limit that would throttle a benchmark) land in the config schema, turn
 * >>> them OFF here, e.g. `rate_limit: { messages_per_second: 0 }` — whatever
 * >>> the schema's "unlimited" spelling is. The schema is strict, so a key
 * >>> that does not exist yet must not be added before it does.
 *
 * `max_message` must stay ≥ the largest message a suite sends (256 KiB).
 */
export const GATEHOUSE_ECHO_SERVICE = {
  max_message: '1MiB',
  // The load generator is not a browser: it sends no Origin.
  allow_missing_origin: true,
  // Benchmarks measure the engine, not the per-connection rate limits.
  message_rate: 100000000,
  byte_rate: '64GiB',
};

/**
 * Extra top-level sections for the Gatehouse config. When connection limits
 * (per IP, per service, handshake rate) land, they must allow the idle
 * suite's 10,000 connections from 127.0.0.1 opened at full speed: raise or
 * disable them here.
 */
export const GATEHOUSE_TOP_LEVEL = {
  // Thousands of connections from 127.0.0.1 opened at full speed.
  limits: {
    handshake_rate: 1000000,
    handshake_burst: 1000000,
    connections_per_address: 100000,
    connections_total: 100000,
    message_rate: 100000000,
    byte_rate: '64GiB',
  },
  // The idle suite holds 10,000 connections for several seconds: keep them.
  websocket: { idle_timeout: '10m' },
  // So SIGTERM (and a --cpu-prof profile write) does not wait long.
  shutdown: { drain_timeout: '3s' },
};

/** A tiny YAML writer for the plain objects above (strings, numbers, booleans, nested objects, arrays of objects or of scalars). */
function toYaml(value, indent = '') {
  let out = '';
  for (const [key, v] of Object.entries(value)) {
    if (Array.isArray(v) && v.every((item) => item === null || typeof item !== 'object')) {
      // A flow sequence of JSON scalars is valid YAML.
      out += `${indent}${key}: ${JSON.stringify(v)}\n`;
    } else if (Array.isArray(v)) {
      out += `${indent}${key}:\n`;
      for (const item of v) {
        const inner = toYaml(item, `${indent}    `);
        out += `${indent}  - ${inner.slice(indent.length + 4)}`;
      }
    } else if (v !== null && typeof v === 'object') {
      out += `${indent}${key}:\n${toYaml(v, `${indent}  `)}`;
    } else {
      out += `${indent}${key}: ${typeof v === 'string' ? JSON.stringify(v) : String(v)}\n`;
    }
  }
  return out;
}

/** The Gatehouse config used by the benchmark, as YAML. */
export function gatehouseConfig(port, { services = {}, topLevel = {} } = {}) {
  return toYaml({
    listen: [{ host: HOST, port }],
    services: {
      echo: { path: ECHO_PATH, type: 'echo', ...GATEHOUSE_ECHO_SERVICE },
      ...services,
    },
    log: { level: 'warn' },
    ...GATEHOUSE_TOP_LEVEL,
    ...topLevel,
  });
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: HOST, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

const live = new Set();

/** Kill every server still running (used when the runner aborts). */
export function killAllServers() {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

/**
 * A started server process.
 * @typedef {{ target: string, label: string, pid: number, host: string, port: number, path: string,
 *   cpuSeconds: () => number, minorFaults: () => number, rssKiB: () => number, stop: () => Promise<void>, stderr: () => string }} Server
 */

/**
 * `wrapper`: a command the node process runs under, e.g. `['valgrind', '--tool=callgrind']`
 * (bench/callgrind.mjs); valgrind runs its guest in its own process, so the pid is still the server's.
 */
async function launch(target, label, script, args, { nodeArgs = [], port, readyTimeoutMs = 20000, cleanup, cwd = ROOT, wrapper = [] }) {
  const command = [...wrapper, process.execPath, ...nodeArgs, script, ...args];
  const child = spawn(command[0], command.slice(1), {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let errText = '';
  child.stdout.on('data', (d) => { if (process.env.BENCH_SERVER_STDOUT) process.stderr.write(d); });
  child.stderr.on('data', (d) => {
    errText = (errText + d.toString()).slice(-8192);
  });
  let exited = false;
  const exitPromise = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      live.delete(child);
      resolve({ code, signal });
    });
  });

  const t0 = Date.now();
  while (!(await canConnect(port))) {
    if (exited) {
      cleanup?.();
      throw new Error(`${label} exited before listening:\n${errText}`);
    }
    if (Date.now() - t0 > readyTimeoutMs) {
      child.kill('SIGKILL');
      cleanup?.();
      throw new Error(`${label} did not listen on ${HOST}:${port} within ${readyTimeoutMs} ms:\n${errText}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  return {
    target,
    label,
    pid: child.pid,
    host: HOST,
    port,
    path: ECHO_PATH,
    cpuSeconds: () => cpuSeconds(child.pid),
    minorFaults: () => minorFaults(child.pid),
    rssKiB: () => rssKiB(child.pid),
    stderr: () => errText,
    async stop(timeoutMs = 10000) {
      if (!exited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        await exitPromise;
        clearTimeout(timer);
      }
      cleanup?.();
    },
  };
}

/**
 * The node flags Gatehouse's executable runs with: the ones on its first line
 * (`#!/usr/bin/env -S node <flags>`). The bench starts it as `node <flags>
 * [nodeArgs] bin/gatehouse.js` so that profiling flags (not allowed in
 * NODE_OPTIONS) can be added while the product's own flags still apply.
 */
export function gatehouseNodeFlags(root = ROOT) {
  const first = readFileSync(path.join(root, 'bin', 'gatehouse.js'), 'utf8').split('\n', 1)[0];
  const m = /^#!\S*env\s+-S\s+node\s+(.*)$/.exec(first);
  return m ? m[1].trim().split(/\s+/) : [];
}

export function gatehouseAvailable(root = ROOT) {
  return existsSync(path.join(root, 'bin', 'gatehouse.js')) && existsSync(path.join(root, 'dist', 'main.js'));
}

const TARGETS = {
  /** @returns {Promise<Server>} */
  async gatehouse(opts = {}) {
    // --gatehouse-root: another checkout (built) to measure instead of this one.
    const root = opts.gatehouseRoot ? path.resolve(opts.gatehouseRoot) : ROOT;
    if (!gatehouseAvailable(root)) {
      throw new Error(`Gatehouse is not runnable in ${root} (need bin/gatehouse.js and dist/main.js: run \`npm run build\`). ` +
        'Use --aa to check the harness with ws on both sides.');
    }
    const port = await freePort();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-bench-'));
    const file = path.join(dir, 'config.yaml');
    writeFileSync(file, gatehouseConfig(port, opts.config));
    // BENCH_GATEHOUSE_NODE_ARGS: extra node flags for the Gatehouse process only (experiments, e.g. GC sizing).
    const extra = (process.env.BENCH_GATEHOUSE_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
    return launch('gatehouse', 'Gatehouse', path.join(root, 'bin', 'gatehouse.js'), ['start', '--config', file], {
      ...opts,
      nodeArgs: [...gatehouseNodeFlags(root), ...extra, ...(opts.nodeArgs ?? [])],
      port,
      cwd: root,
      cleanup: () => rmSync(dir, { recursive: true, force: true }),
    });
  },

  /** @returns {Promise<Server>} */
  async ws(opts = {}) {
    const port = await freePort();
    // opts.wsArgs: options of the ws server script (e.g. --deflate same).
    return launch('ws', 'ws', path.join(ROOT, 'bench', 'servers', 'ws-echo.mjs'),
      ['--host', HOST, '--port', String(port), '--path', ECHO_PATH, ...(opts.wsArgs ?? [])], { ...opts, port });
  },

  /** A bare Node TCP relay to `opts.backendPort` (no parsing): the floor of a Node proxy. */
  async bare(opts = {}) {
    if (!opts.backendPort) throw new Error('the bare relay needs opts.backendPort');
    const port = await freePort();
    return launch('bare', 'bare Node relay', path.join(ROOT, 'bench', 'servers', 'bare-relay.mjs'),
      ['--host', HOST, '--port', String(port), '--backend-port', String(opts.backendPort)], { ...opts, port });
  },

  /** Minimal raw-`net` echo: only for checking the load generator's headroom. */
  async raw(opts = {}) {
    const port = await freePort();
    return launch('raw', 'raw', path.join(ROOT, 'bench', 'servers', 'raw-echo.mjs'),
      ['--host', HOST, '--port', String(port)], { ...opts, port });
  },
};

export const TARGET_NAMES = Object.keys(TARGETS);

/** A suite's stand-in backend, `bench/servers/<name>.mjs` (not a target: it is not measured). */
async function startBackend(name, args = []) {
  const port = await freePort();
  return launch(name, name, path.join(ROOT, 'bench', 'servers', `${name}.mjs`), ['--host', HOST, '--port', String(port), ...args], { port });
}

/** A minimal MQTT backend that returns each PUBLISH to its sender (the `mqtt` suite's broker; not a target). */
export function startMqttEcho() {
  return startBackend('mqtt-echo');
}

/** A stand-in STOMP broker answering each SEND with a MESSAGE of its size, over `tcp` or `ws` (the `stomp` suite's). */
export function startStompEcho(transport) {
  return startBackend('stomp-echo', ['--transport', transport, '--path', ECHO_PATH]);
}

let profileSeq = 0;

/**
 * Start a target by name. `opts.candidate` replaces what runs in the
 * "gatehouse" slot: `ws` for an A/A check (the harness's own noise), `raw`
 * for the load generator's ceiling.
 */
export async function startTarget(name, opts = {}) {
  const actual = name === 'gatehouse' && opts.candidate ? opts.candidate : name;
  const impl = TARGETS[actual];
  if (!impl) throw new Error(`unknown target ${actual}`);
  let startOpts = opts;
  if (opts.profileDir) {
    // One directory per server process, named after the target, so profiles are easy to tell apart.
    const dir = path.join(opts.profileDir, `${actual}-${String(++profileSeq).padStart(2, '0')}`);
    startOpts = { ...opts, nodeArgs: [...(opts.nodeArgs ?? []), '--cpu-prof', '--cpu-prof-dir', dir] };
  }
  const server = await impl(startOpts);
  // A stand-in for Gatehouse is labelled "(A)" so logs tell two ws processes apart.
  return actual === name ? server : { ...server, label: `${server.label} (A)` };
}
