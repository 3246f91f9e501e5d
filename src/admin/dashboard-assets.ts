/**
 * The dashboard's files: the page, its script (our code and uPlot, bundled
 * by dashboard/build.mjs — no CDN) and uPlot's stylesheet. Read once, kept in
 * memory; the page's policy lets it load only what this listener serves.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendText } from './respond.js';

/** The dashboard's build output, relative to this module in src/ and in dist/ alike. */
const DASHBOARD_DIST = new URL('../../dashboard/dist/', import.meta.url);

const CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
};

const cache = new Map<string, Buffer>();

export function isDashboardPath(path: string): boolean {
  return Object.hasOwn(FILES, path);
}

export function serveDashboard(req: IncomingMessage, res: ServerResponse, path: string): void {
  const f = FILES[path];
  let body = cache.get(f.file);
  if (body === undefined) {
    try {
      body = readFileSync(new URL(f.file, DASHBOARD_DIST));
    } catch {
      return sendText(req, res, 503, 'the dashboard is not built (run: npm run build)\n');
    }
    cache.set(f.file, body);
  }
  sendText(req, res, 200, body, f.type, { 'Content-Security-Policy': CSP, 'X-Frame-Options': 'DENY', 'Referrer-Policy': 'no-referrer' });
}
