/**
 * `POST /api/publish` on the admin listener: a backend sends a message to a
 * `pubsub` service's channel ("send this to channel X"), delivered to its
 * subscribers in every process of the cluster. Body (JSON, at most 1 MiB):
 * `{"service": "live", "channel": "news.sport", "data": <any JSON>}`.
 * The admin token is the authority: no channel pattern applies.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from './respond.js';

const MAX_BODY = 1024 * 1024;

export type PublishResult = 'ok' | 'unknown_service' | 'bad_channel' | 'unavailable';

const STATUS: Record<PublishResult, number> = { ok: 200, unknown_service: 404, bad_channel: 400, unavailable: 503 };

/** Delivers a message to a pub/sub service's channel (the admin hooks' `publish`). */
export type PublishTo = (service: string, channel: string, data: unknown) => Promise<PublishResult>;

export function publish(req: IncomingMessage, res: ServerResponse, publishTo: PublishTo | undefined,
  audited: (outcome: string, fields: Record<string, unknown>) => void): void {
  if (!publishTo) { sendJson(req, res, 404, { error: 'not_found' }); return; }
  readJson(req).then(async (body) => {
    if (!body || typeof body.service !== 'string' || typeof body.channel !== 'string' || !('data' in body)) {
      audited('refused', { error: 'bad_request' });
      sendJson(req, res, 400, { error: 'bad_request', expected: '{"service": NAME, "channel": NAME, "data": JSON}' });
      return;
    }
    const result = await publishTo(body.service, body.channel, body.data);
    audited(result === 'ok' ? 'ok' : 'refused', { service: body.service.slice(0, 64), channel: body.channel.slice(0, 256), ...(result === 'ok' ? {} : { error: result }) });
    sendJson(req, res, STATUS[result], result === 'ok' ? { published: true } : { published: false, error: result });
  }, () => sendJson(req, res, 413, { error: 'body_too_large' }));
}

function readJson(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) { req.destroy(); reject(new Error('too large')); return; }
      chunks.push(c);
    });
    req.on('end', () => {
      try {
        const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        resolve(typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : undefined);
      } catch {
        resolve(undefined);
      }
    });
    req.on('error', reject);
  });
}
