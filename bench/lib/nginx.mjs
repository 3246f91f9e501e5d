/**
 * nginx (Debian `nginx`) as the reference WebSocket reverse proxy of the
 * benchmarks: the proxy suite and bench/proxy-latency.mjs.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { cpuSeconds, rssKiB } from './proc.mjs';
import { freePort, HOST } from './targets.mjs';

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: HOST, port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/** Pids of a process's direct children (nginx workers). */
function childrenOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * nginx as a WebSocket reverse proxy on a free port, with a temp prefix,
 * from `proxyPath` to the backend's `backendPath`:
 * one worker (Gatehouse is one process too), no access log, the Upgrade and
 * Connection headers passed on as the nginx documentation prescribes.
 */
export async function startNginx(backendPort, { path: proxyPath = '/proxy', backendPath = '/echo' } = {}) {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-bench-nginx-'));
  for (const d of ['logs', 'tmp']) mkdirSync(path.join(dir, d));
  const conf = path.join(dir, 'nginx.conf');
  writeFileSync(conf, `
worker_processes 1;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  server {
    listen ${HOST}:${port};
    location = ${proxyPath} {
      proxy_pass http://${HOST}:${backendPort}${backendPath};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host $host;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }
  }
}
`);
  const child = spawn('nginx', ['-p', dir, '-c', conf, '-e', path.join(dir, 'logs', 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let errText = '';
  child.stderr.on('data', (d) => { errText = (errText + d.toString()).slice(-4096); });
  let exited = false;
  // If the runner is interrupted (it exits on SIGINT), nginx must not outlive it.
  const killOnExit = () => { if (!exited) child.kill('SIGKILL'); };
  process.on('exit', killOnExit);
  const exitPromise = new Promise((resolve) => child.once('exit', () => {
    exited = true;
    process.removeListener('exit', killOnExit);
    resolve();
  }));
  const t0 = Date.now();
  while (!(await canConnect(port))) {
    if (exited) throw new Error(`nginx exited before listening: ${errText}`);
    if (Date.now() - t0 > 10_000) { child.kill('SIGKILL'); throw new Error(`nginx did not listen: ${errText}`); }
    await new Promise((r) => setTimeout(r, 50));
  }
  const all = () => [child.pid, ...childrenOf(child.pid)];
  return {
    target: 'nginx',
    label: 'nginx',
    pid: child.pid,
    host: HOST,
    port,
    path: proxyPath,
    cpuSeconds: () => all().reduce((s, p) => s + cpuSeconds(p), 0),
    /** The worker holds the connections; the master's memory does not move with them. */
    rssKiB: () => childrenOf(child.pid).reduce((s, p) => s + rssKiB(p), 0),
    stderr: () => errText,
    async stop() {
      if (!exited) {
        child.kill('SIGTERM'); // fast shutdown
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exitPromise;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
