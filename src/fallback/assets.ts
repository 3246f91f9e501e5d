/**
 * Static assets of the fallback under the reserved prefix /.gatehouse/: the
 * client library (browser bundle and ESM build, from client/dist) and the demo
 * page. Read once and kept in memory; strict headers so they can't be framed
 * or sniffed.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatehouseConfig } from '../config/schema.js';
import { DEMO_PAGE } from './demo.js';

/** Where the demo page is served (the index page links to it). */
export const DEMO_PATH = '/.gatehouse/demo';

/** The client package's build output, relative to this module in src/ and in dist/ alike. */
const CLIENT_DIST = new URL('../../client/dist/', import.meta.url);

const ASSETS: Record<string, { file?: string; type: string; text?: () => string }> = {
  '/.gatehouse/client.js': { file: 'gatehouse.js', type: 'text/javascript; charset=utf-8' },
  '/.gatehouse/client.mjs': { file: 'index.js', type: 'text/javascript; charset=utf-8' },
  [DEMO_PATH]: { type: 'text/html; charset=utf-8', text: () => DEMO_PAGE },
};

const cache = new Map<string, Buffer>();

function load(path: string): Buffer | undefined {
  const hit = cache.get(path);
  if (hit) return hit;
  const asset = ASSETS[path];
  let body: Buffer;
  try {
    body = asset.text ? Buffer.from(asset.text(), 'utf8') : readFileSync(new URL(asset.file!, CLIENT_DIST));
  } catch {
    return undefined;
  }
  cache.set(path, body);
  return body;
}

/** Returns false for paths that are not ours (so the front door answers 404). */
export function serveAsset(req: IncomingMessage, res: ServerResponse, path: string, config: GatehouseConfig): boolean {
  const asset = ASSETS[path];
  if (!asset) return false;
  const isDemo = path === DEMO_PATH;
  if (isDemo ? !config.fallback.demo_page : !config.fallback.serve_client) return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('405 method not allowed\n');
    return true;
  }
  const body = load(path);
  if (!body) {
    res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end('503 client library not built (run: npm run build:client)\n');
    return true;
  }
  res.writeHead(200, {
    'Content-Type': asset.type,
    'Content-Length': body.length,
    'X-Content-Type-Options': 'nosniff',
    'Cache-Control': isDemo ? 'no-store' : 'public, max-age=300',
    'Cross-Origin-Resource-Policy': 'cross-origin',
    ...(isDemo ? {
      'Content-Security-Policy': "default-src 'none'; script-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:; style-src 'unsafe-inline'; frame-ancestors 'none'",
      'X-Frame-Options': 'DENY',
    } : {}),
  });
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}
