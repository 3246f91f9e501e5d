/** Answers of the admin listener: JSON or text, never cached, never sniffed. */
import type { IncomingMessage, ServerResponse } from 'node:http';

const COMMON = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' };

export function sendJson(req: IncomingMessage, res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { ...COMMON, ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(req.method === 'HEAD' ? undefined : text);
}

export function sendText(req: IncomingMessage, res: ServerResponse, status: number, body: string | Buffer, contentType = 'text/plain; charset=utf-8', headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...COMMON, ...headers, 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** A request whose method the path does not take. */
export function methodNotAllowed(req: IncomingMessage, res: ServerResponse, allow: string): void {
  sendJson(req, res, 405, { error: 'method_not_allowed', allow }, { Allow: allow });
}
