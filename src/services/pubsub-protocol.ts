/**
 * The requests and answers of `gatehouse.pubsub.v1` (docs/pubsub.md): one
 * JSON object per text message. Requests are checked field by field; what is
 * not a request of the protocol is refused with the reason in words.
 */

export interface PubSubRequest {
  type: 'subscribe' | 'unsubscribe' | 'publish';
  channel: string;
  /** Echoed in the answer; a publish without one is not acknowledged. */
  id?: string | number;
  /** publish: any JSON value. */
  data?: unknown;
}

/** Channel names: 1 to 256 of these characters. No spaces and no wildcard characters (* # >): a channel is one exact name. */
export const CHANNEL = /^[A-Za-z0-9_.:/@=+~-]{1,256}$/;
const TYPES = new Set(['subscribe', 'unsubscribe', 'publish']);

/** The request, or why the text is not one. */
export function parseRequest(text: string): PubSubRequest | string {
  let v: unknown;
  try { v = JSON.parse(text); } catch { return 'not JSON'; }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object';
  const o = v as Record<string, unknown>;
  if (typeof o.type !== 'string' || !TYPES.has(o.type)) return 'type must be subscribe, unsubscribe or publish';
  if (typeof o.channel !== 'string' || !CHANNEL.test(o.channel)) return 'channel must be 1-256 of A-Z a-z 0-9 _ . : / @ = + ~ -';
  if (o.id !== undefined && !(typeof o.id === 'string' && o.id.length <= 64) && !(typeof o.id === 'number' && Number.isSafeInteger(o.id))) {
    return 'id must be a string (at most 64 characters) or an integer';
  }
  if (o.type === 'publish' && !('data' in o)) return 'publish needs data';
  return { type: o.type as PubSubRequest['type'], channel: o.channel, id: o.id as PubSubRequest['id'], data: o.data };
}

/** An answer to `r`: its kind, its channel and id, and for an error its code. */
export function reply(type: 'subscribed' | 'unsubscribed' | 'published' | 'error', r: PubSubRequest, code?: string): string {
  return JSON.stringify({ type, channel: r.channel, ...(r.id !== undefined ? { id: r.id } : {}), ...(code ? { code, request: r.type } : {}) });
}
