/** The native WebSocket transport: a thin adapter over the platform's (or an injected) WebSocket. */
import type { Transport, TransportEvents } from './transport.js';

/** The part of the WebSocket constructor we use: the browser's, or `ws` in Node. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  readonly extensions: string;
  readonly bufferedAmount: number;
  binaryType: string;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
  onclose: ((ev: any) => void) | null;
  send(data: any): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[], options?: any) => WebSocketLike;

export class NativeTransport implements Transport {
  private readonly ws: WebSocketLike;
  private opened = false;
  private done = false;
  private timer?: ReturnType<typeof setTimeout>;

  /**
   * `beforeOpenFailed` is called instead of `events.close` when the connection
   * fails before it opened (refused, blocked, upgrade stripped, timed out): the
   * socket then decides whether to fall back.
   */
  constructor(url: string, protocols: string[], Impl: WebSocketConstructor, headers: Record<string, string> | undefined,
    timeout: number, private readonly events: TransportEvents, private readonly beforeOpenFailed: (why: string) => void) {
    // The `ws` package takes headers as a third argument; browsers ignore extra arguments.
    this.ws = headers ? new Impl(url, protocols, { headers }) : new Impl(url, protocols);
    this.ws.binaryType = 'arraybuffer';
    this.timer = setTimeout(() => {
      if (this.opened || this.done) return;
      this.done = true;
      this.detach();
      try { this.ws.close(); } catch { /* not yet open */ }
      this.beforeOpenFailed('WebSocket connect timed out');
    }, timeout);
    this.ws.onopen = () => {
      if (this.done) return;
      clearTimeout(this.timer);
      this.opened = true;
      this.events.open(this.ws.protocol ?? '', this.ws.extensions ?? '');
    };
    this.ws.onmessage = (ev: { data: unknown }) => {
      const d = ev.data;
      if (typeof d === 'string') this.events.message(d);
      else if (d instanceof ArrayBuffer) this.events.message(new Uint8Array(d));
      else if (ArrayBuffer.isView(d)) this.events.message(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
      else if (Array.isArray(d)) this.events.message(concatChunks(d as Uint8Array[]));
    };
    this.ws.onerror = () => { /* the close that follows carries the outcome */ };
    this.ws.onclose = (ev: { code: number; reason: string; wasClean: boolean }) => {
      clearTimeout(this.timer);
      if (this.done) return;
      this.done = true;
      if (!this.opened) { this.beforeOpenFailed(`WebSocket closed before open (${ev.code})`); return; }
      const failed = !ev.wasClean && ev.code === 1006;
      this.events.close(ev.code, ev.reason ?? '', ev.wasClean, failed ? 'WebSocket connection failed' : undefined);
    };
  }

  get bufferedAmount(): number { return this.ws.bufferedAmount; }

  send(data: string | Uint8Array): void { this.ws.send(data); }

  close(code?: number, reason?: string): void {
    if (!this.opened) {
      clearTimeout(this.timer);
      this.done = true;
      this.detach();
      try { this.ws.close(); } catch { /* connecting */ }
      this.events.close(1006, '', false, 'closed before the connection was established');
      return;
    }
    this.ws.close(code, reason);
  }

  private detach(): void {
    this.ws.onopen = this.ws.onmessage = this.ws.onclose = null;
    this.ws.onerror = () => undefined;
  }
}

function concatChunks(chunks: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) { out.set(c, off); off += c.length; }
  return out;
}
