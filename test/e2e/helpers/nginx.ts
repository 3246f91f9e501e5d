/**
 * A real nginx between the browser and the gateway, configured like the
 * corporate proxies that break WebSocket: it forwards plain HTTP but not the
 * Upgrade (no Upgrade / Connection headers are passed on). Optionally it also
 * buffers and compresses responses, as some intermediaries do, ignoring X-Accel-Buffering.
 * Runs in the foreground (daemon off) under a temporary prefix.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';

export const NGINX = process.env.GATEHOUSE_NGINX ?? '/usr/sbin/nginx';

export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  srv.close();
  await once(srv, 'close');
  return port;
}

async function waitForPort(port: number, child: ChildProcess, errorLog: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${readFileSync(errorLog, 'utf8')}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('nginx did not start listening');
}

export interface Nginx { port: number; errorLog(): string; stop(): Promise<void> }

export async function startUpgradeStrippingProxy(upstreamPort: number, opts: { buffering?: boolean } = {}): Promise<Nginx> {
  const buffering = opts.buffering
    // Compressing proxies hold a stream back until their compressor's block fills: nothing gets through.
    ? 'proxy_buffering on; proxy_ignore_headers X-Accel-Buffering; gzip on; gzip_types application/octet-stream; gzip_min_length 1; gzip_buffers 16 64k;'
    : '';
  return startNginx(`
      proxy_pass http://127.0.0.1:${upstreamPort};
      proxy_http_version 1.1;
      # Deliberately no "proxy_set_header Upgrade/Connection": the WebSocket upgrade is stripped.
      proxy_read_timeout 60s;
      ${buffering}`);
}

/**
 * nginx as its WebSocket proxying documentation configures it: Upgrade and
 * Connection passed on, and the client address appended to X-Forwarded-For
 * (`$proxy_add_x_forwarded_for`). A client's own `Forwarded` header passes
 * through untouched, as it does in every such deployment.
 */
export function startWebSocketProxy(upstreamPort: number, opts: { bind?: string } = {}): Promise<Nginx> {
  return startNginx(`
      proxy_pass http://127.0.0.1:${upstreamPort};${opts.bind ? `
      proxy_bind ${opts.bind};` : ''}
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_read_timeout 60s;`);
}

/** nginx in the foreground under a temporary prefix, on a free loopback port, with `location /` as given. */
async function startNginx(location: string): Promise<Nginx> {
  const prefix = mkdtempSync(join(tmpdir(), 'gatehouse-nginx-'));
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(prefix, d));
  const port = await freePort();
  const errorLog = join(prefix, 'error.log');
  writeFileSync(join(prefix, 'nginx.conf'), `
daemon off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${errorLog} warn;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  server {
    listen 127.0.0.1:${port};
    location / {${location}
    }
  }
}
`);
  const child = spawn(NGINX, ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', errorLog], { stdio: 'ignore' });
  await waitForPort(port, child, errorLog);
  return {
    port,
    errorLog: () => readFileSync(errorLog, 'utf8'),
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}
