/** A raw fallback client for tests: speaks the wire format request by request, so tests can forge anything. */
import { randomBytes } from 'node:crypto';
import { decodeFrames, encodeClose, encodeKey, encodeMessage, encodeNumber, FrameType, type Frame } from '../../../src/fallback/wire.js';

export const ALLOWED = 'https://app.example';
export const EVIL = 'https://evil.example';

export function frames(body: Buffer): Frame[] {
  const { frames: f, error } = decodeFrames(body, { maxMessage: 64 * 1024 * 1024, maxFrames: 1_000_000 });
  if (error) throw error;
  return f;
}

/** Session id → its key, as the open answers gave them (a RawSession finds its key here). */
const sessionKeys = new Map<string, Buffer>();

export async function openSession(base: string, headers: Record<string, string>, protocols: string[] = []): Promise<{ res: Response; sid?: string; key?: Buffer; answer?: Record<string, unknown> }> {
  // `base` may carry the WebSocket URL's own query (a ticket, say): the open keeps it.
  const res = await fetch(`${base}${base.includes('?') ? '&' : '?'}gh=open`, { method: 'POST', headers: { 'Content-Type': 'text/plain', ...headers }, body: JSON.stringify({ protocols }) });
  if (res.status !== 200) { await res.arrayBuffer(); return { res }; }
  const answer = await res.json() as Record<string, unknown>;
  const key = Buffer.from(answer.key as string, 'base64url');
  sessionKeys.set(answer.session as string, key);
  return { res, sid: answer.session as string, key, answer };
}

/** Remember the key an open answer gave (for answers read without `openSession`). */
export function rememberKey(answer: { session: string; key: string }): void {
  sessionKeys.set(answer.session, Buffer.from(answer.key, 'base64url'));
}

/** A session request's body: the session's KEY frame (a made-up one for a session never opened here), then `frames`. */
export function keyed(sid: string, frames: Buffer = Buffer.alloc(0)): Buffer {
  const key = sessionKeys.get(sid) ?? randomBytes(32);
  return Buffer.concat([encodeKey(key), frames]);
}

export class RawSession {
  nextOut = 1;
  lastIn = 0;
  constructor(readonly base: string, readonly sid: string, public headers: Record<string, string>) {}

  /** A request of this session; its body starts with the session's key unless `withKey` is false (a forger's request). */
  request(op: string, body?: Buffer, headers: Record<string, string> = this.headers, extra = '', withKey = true): Promise<Response> {
    return fetch(`${this.base}?gh=${op}&s=${this.sid}${extra}`, { method: 'POST', headers, body: withKey ? keyed(this.sid, body) : body });
  }

  /** POST messages (text unless Buffer) with the next numbers. */
  async send(messages: Array<string | Buffer>, headers?: Record<string, string>): Promise<Response> {
    const parts = [encodeNumber(FrameType.SEQ, this.nextOut)];
    for (const m of messages) parts.push(encodeMessage(typeof m === 'string' ? Buffer.from(m) : m, typeof m !== 'string'));
    this.nextOut += messages.length;
    const res = await this.request('send', Buffer.concat(parts), headers);
    return res;
  }

  async sendClose(code: number, reason: string): Promise<Response> {
    const body = Buffer.concat([encodeNumber(FrameType.SEQ, this.nextOut++), encodeClose(code, reason)]);
    return this.request('send', body);
  }

  /** One long-poll; returns the message-like frames not seen before, and acknowledges them next time. */
  async poll(headers?: Record<string, string>): Promise<{ res: Response; messages: Frame[] }> {
    const res = await this.request('poll', undefined, headers, `&a=${this.lastIn}`);
    if (res.status !== 200) { await res.arrayBuffer(); return { res, messages: [] }; }
    const body = Buffer.from(await res.arrayBuffer());
    const out: Frame[] = [];
    let seq = 0;
    for (const f of frames(body)) {
      if (f.type === FrameType.SEQ) seq = f.value;
      else if (f.type === FrameType.TEXT || f.type === FrameType.BINARY || f.type === FrameType.CLOSE) {
        const n = seq++;
        if (n > this.lastIn) { this.lastIn = n; out.push(f); }
      }
    }
    return { res, messages: out };
  }

  /** Poll until `count` messages (or a CLOSE) arrived. */
  async receive(count: number): Promise<Frame[]> {
    const got: Frame[] = [];
    while (got.length < count) {
      const { res, messages } = await this.poll();
      if (res.status !== 200) throw new Error(`poll answered ${res.status}`);
      got.push(...messages);
      if (messages.some((m) => m.type === FrameType.CLOSE)) break;
    }
    return got;
  }

  /** Keep the session from being reaped while a test waits (an acknowledgement-only POST every `ms`). */
  keepAlive(ms: number): () => void {
    const timer = setInterval(() => {
      this.request('send', encodeNumber(FrameType.ACK, this.lastIn)).then((r) => r.arrayBuffer(), () => undefined);
    }, ms);
    return () => clearInterval(timer);
  }

  /** Canary: one message there and back. */
  async echo(text: string): Promise<string> {
    const res = await this.send([text]);
    if (res.status !== 200) throw new Error(`send answered ${res.status}`);
    await res.arrayBuffer();
    const [m] = await this.receive(1);
    if (m.type !== FrameType.TEXT) throw new Error(`expected text, got frame ${m.type}`);
    return m.payload.toString('utf8');
  }
}
