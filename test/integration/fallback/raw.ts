/** A raw fallback client for tests: speaks the wire format request by request, so tests can forge anything. */
import { decodeFrames, encodeClose, encodeMessage, encodeNumber, FrameType, type Frame } from '../../../src/fallback/wire.js';

export const ALLOWED = 'https://app.example';
export const EVIL = 'https://evil.example';

export function frames(body: Buffer): Frame[] {
  const { frames: f, error } = decodeFrames(body, { maxMessage: 64 * 1024 * 1024, maxFrames: 1_000_000 });
  if (error) throw error;
  return f;
}

export async function openSession(base: string, headers: Record<string, string>, protocols: string[] = []): Promise<{ res: Response; sid?: string; answer?: Record<string, unknown> }> {
  const res = await fetch(`${base}?gh=open`, { method: 'POST', headers: { 'Content-Type': 'text/plain', ...headers }, body: JSON.stringify({ protocols }) });
  if (res.status !== 200) { await res.arrayBuffer(); return { res }; }
  const answer = await res.json() as Record<string, unknown>;
  return { res, sid: answer.session as string, answer };
}

export class RawSession {
  nextOut = 1;
  lastIn = 0;
  constructor(readonly base: string, readonly sid: string, public headers: Record<string, string>) {}

  request(op: string, body?: Buffer, headers: Record<string, string> = this.headers, extra = ''): Promise<Response> {
    return fetch(`${this.base}?gh=${op}&s=${this.sid}${extra}`, { method: 'POST', headers, body });
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
