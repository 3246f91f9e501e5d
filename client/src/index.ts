/**
 * GatehouseSocket: the WHATWG WebSocket interface, over a native WebSocket when
 * one gets through, else over Gatehouse's HTTP fallback — chosen by itself, so
 * application code and libraries (STOMP, MQTT clients) work unchanged.
 *
 *   const ws = new GatehouseSocket('wss://gw.example.com/chat', ['v12.stomp']);
 *   ws.onmessage = (e) => console.log(e.data);
 *
 * In Node 20 (no global WebSocket) pass one: `{ WebSocket: (await import('ws')).WebSocket }`,
 * or force `{ transport: 'fallback' }` (its requests go over node:http there; browsers use `fetch`).
 */
import { FallbackTransport } from './fallback.js';
import { inNode, nodeFetch } from './node-http.js';
import { NativeTransport, type WebSocketConstructor } from './native.js';
import type { Transport } from './transport.js';
import { GatehouseCloseEvent, GatehouseErrorEvent, GatehouseMessageEvent } from './events.js';

export { GatehouseCloseEvent, GatehouseErrorEvent, GatehouseMessageEvent };
export type { WebSocketConstructor, WebSocketLike } from './native.js';

export interface GatehouseSocketOptions {
  /** 'auto' (default): WebSocket first, the HTTP fallback when it fails or is blocked. */
  transport?: 'auto' | 'websocket' | 'fallback';
  /** A WebSocket implementation (e.g. the `ws` package in Node); defaults to the global one. */
  WebSocket?: WebSocketConstructor;
  /** A fetch implementation; defaults to the global one in browsers, and in Node to requests over node:http with a keep-alive agent. */
  fetch?: typeof fetch;
  /** Extra request headers (Node only: browsers do not let scripts set Cookie or Origin). */
  headers?: Record<string, string>;
  /** Fallback requests carry cookies: 'include' (default) | 'same-origin' | 'omit'. */
  credentials?: 'include' | 'same-origin' | 'omit';
  /** Give up on the WebSocket attempt after this many ms (default 10000). */
  connectTimeout?: number;
  /** A stream that shows no byte within this many ms is buffered by an intermediary: long-poll (default 3000). */
  streamTimeout?: number;
  /**
   * A stream whose messages trail the answers to requests by this many ms is
   * held back by an intermediary (HAProxy without `option http-no-delay`):
   * long-poll (default 100; 0 never checks).
   */
  streamDelay?: number;
  /** Use long-polling from the start instead of streaming. */
  poll?: boolean;
  /** Fail the fallback connection after this many ms of failing requests (default 20000). */
  retryTimeout?: number;
  /** Wait this long for the answer to close() (default 5000). */
  closeTimeout?: number;
}

type Handler<E extends Event> = ((this: GatehouseSocket, ev: E) => unknown) | null;

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

export class GatehouseSocket extends EventTarget {
  static readonly CONNECTING = CONNECTING;
  static readonly OPEN = OPEN;
  static readonly CLOSING = CLOSING;
  static readonly CLOSED = CLOSED;
  readonly CONNECTING = CONNECTING;
  readonly OPEN = OPEN;
  readonly CLOSING = CLOSING;
  readonly CLOSED = CLOSED;

  readonly url: string;
  /** 'websocket' or 'fallback' once chosen, '' before. */
  transport: '' | 'websocket' | 'fallback' = '';
  protocol = '';
  extensions = '';
  binaryType: 'blob' | 'arraybuffer' = 'blob';

  onopen: Handler<Event> = null;
  onmessage: Handler<GatehouseMessageEvent> = null;
  onerror: Handler<Event> = null;
  onclose: Handler<GatehouseCloseEvent> = null;

  private state = CONNECTING;
  private impl?: Transport;
  private readonly protocols: string[];
  private readonly origin: string;
  /** listeners added per event type: dispatching an event nobody listens to is skipped (it is not free) */
  private readonly listening = new Map<string, number>();
  private readonly options: GatehouseSocketOptions;
  private afterClose = 0;
  /** sends wait behind a Blob being read, to keep their order */
  private blobChain?: Promise<void>;

  constructor(url: string | URL, protocols?: string | string[], options: GatehouseSocketOptions = {}) {
    super();
    const u = new URL(String(url), (globalThis as { location?: { href: string } }).location?.href);
    if (u.protocol === 'http:') u.protocol = 'ws:';
    else if (u.protocol === 'https:') u.protocol = 'wss:';
    if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw syntaxError(`unsupported URL scheme ${u.protocol}`);
    if (u.hash) throw syntaxError('a WebSocket URL has no fragment');
    this.url = u.toString();
    this.origin = `${u.protocol === 'wss:' ? 'https:' : 'http:'}//${u.host}`;
    this.protocols = protocols === undefined ? [] : typeof protocols === 'string' ? [protocols] : [...protocols];
    if (new Set(this.protocols).size !== this.protocols.length) throw syntaxError('duplicate subprotocol');
    for (const p of this.protocols) if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(p)) throw syntaxError(`invalid subprotocol ${p}`);
    this.options = options;
    // Connect after the constructor returns, so handlers set right after it see every event.
    queueMicrotask(() => this.connect());
  }

  get readyState(): number { return this.state; }
  get bufferedAmount(): number { return (this.impl?.bufferedAmount ?? 0) + this.afterClose; }

  send(data: string | ArrayBufferLike | ArrayBufferView | Blob): void {
    if (this.state === CONNECTING) throw invalidState('still connecting');
    if (this.blobChain || (typeof Blob !== 'undefined' && data instanceof Blob)) {
      const prev = this.blobChain ?? Promise.resolve();
      const next = prev.then(async () => { this.sendNow(data instanceof Blob ? new Uint8Array(await data.arrayBuffer()) : data as ArrayBufferView); });
      this.blobChain = next;
      void next.finally(() => { if (this.blobChain === next) this.blobChain = undefined; });
      return;
    }
    this.sendNow(data as string | ArrayBufferLike | ArrayBufferView);
  }

  close(code?: number, reason?: string): void {
    if (code !== undefined && code !== 1000 && (code < 3000 || code > 4999)) throw invalidAccess(`close code ${code} is not allowed`);
    if (reason !== undefined && new TextEncoder().encode(reason).length > 123) throw syntaxError('close reason longer than 123 bytes');
    if (this.state >= CLOSING) return;
    const wasConnecting = this.state === CONNECTING;
    this.state = CLOSING;
    if (this.impl) this.impl.close(code ?? 1000, reason ?? '');
    else if (wasConnecting) this.closed(1006, '', false, 'closed before the connection was established');
  }

  // ---- internals -----------------------------------------------------------------

  private sendNow(data: string | ArrayBufferLike | ArrayBufferView): void {
    const bytes = typeof data === 'string' ? data : toBytes(data);
    if (this.state !== OPEN || !this.impl) {
      this.afterClose += typeof bytes === 'string' ? new TextEncoder().encode(bytes).length : bytes.length;
      return;
    }
    this.impl.send(bytes);
  }

  private connect(): void {
    if (this.state !== CONNECTING) return;
    const mode = this.options.transport ?? 'auto';
    const Impl = this.options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (mode === 'fallback' || (mode === 'auto' && !Impl)) { this.startFallback(); return; }
    if (!Impl) { this.closed(1006, '', false, 'no WebSocket implementation available'); return; }
    this.transport = 'websocket';
    const events = this.events();
    this.impl = new NativeTransport(this.url, this.protocols, Impl, this.options.headers, this.options.connectTimeout ?? 10_000, events,
      (why) => {
        if (this.state !== CONNECTING) { this.closed(1006, '', false, why); return; }
        if (mode === 'auto') this.startFallback();
        else this.closed(1006, '', false, why);
      });
  }

  private startFallback(): void {
    // (in Node, node:http costs the client and the gateway less per request than Node's fetch: see node-http.ts)
    const fetchImpl = this.options.fetch
      ?? (inNode() ? nodeFetch as unknown as typeof fetch : typeof fetch === 'function' ? fetch.bind(globalThis) : undefined);
    if (!fetchImpl) { this.closed(1006, '', false, 'no fetch implementation available'); return; }
    this.transport = 'fallback';
    this.impl = new FallbackTransport(this.url, this.protocols, {
      fetch: fetchImpl,
      headers: this.options.headers,
      credentials: this.options.credentials ?? 'include',
      streamTimeout: this.options.streamTimeout ?? 3000,
      streamDelay: this.options.streamDelay ?? 100,
      poll: this.options.poll ?? false,
      retryTimeout: this.options.retryTimeout ?? 20_000,
      closeTimeout: this.options.closeTimeout ?? 5000,
    }, this.events());
  }

  /** Which fallback mode is in use ('stream' or 'poll'), for diagnostics and the demo page. */
  get fallbackMode(): 'stream' | 'poll' | undefined {
    return this.impl instanceof FallbackTransport ? this.impl.mode : undefined;
  }

  private events() {
    return {
      open: (protocol: string, extensions: string) => {
        if (this.state !== CONNECTING) return;
        this.protocol = protocol;
        this.extensions = extensions;
        this.state = OPEN;
        this.fire(new Event('open'), this.onopen);
      },
      message: (data: string | Uint8Array) => {
        if (this.state !== OPEN && this.state !== CLOSING) return;
        let payload: string | ArrayBuffer | Blob;
        if (typeof data === 'string') payload = data;
        else if (this.binaryType === 'blob' && typeof Blob !== 'undefined') payload = new Blob([data.slice()]);
        else payload = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data.buffer as ArrayBuffer : data.slice().buffer as ArrayBuffer;
        this.fire(new GatehouseMessageEvent(payload, this.origin), this.onmessage as Handler<Event>);
      },
      close: (code: number, reason: string, wasClean: boolean, error?: string) => this.closed(code, reason, wasClean, error),
    };
  }

  private closed(code: number, reason: string, wasClean: boolean, error?: string): void {
    if (this.state === CLOSED) return;
    this.state = CLOSED;
    if (error) this.fire(new GatehouseErrorEvent(error), this.onerror);
    this.fire(new GatehouseCloseEvent(code, reason, wasClean), this.onclose as Handler<Event>);
  }

  override addEventListener(...args: Parameters<EventTarget['addEventListener']>): void {
    if (args[1]) this.listening.set(args[0], (this.listening.get(args[0]) ?? 0) + 1);
    super.addEventListener(...args);
  }

  private fire(ev: Event, handler: Handler<Event>): void {
    if (handler) {
      try { handler.call(this, ev); } catch (err) { reportError(err); }
    }
    // (counted, not exact: a removed listener still costs a dispatch, never a missed event)
    if (this.listening.has(ev.type)) this.dispatchEvent(ev);
  }
}

function toBytes(data: ArrayBufferLike | ArrayBufferView): Uint8Array {
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  return new Uint8Array(data as ArrayBuffer).slice();
}

function domError(name: string, message: string): Error {
  if (typeof DOMException === 'function') return new DOMException(message, name);
  const e = new Error(message);
  e.name = name;
  return e;
}
const syntaxError = (m: string) => domError('SyntaxError', m);
const invalidState = (m: string) => domError('InvalidStateError', m);
const invalidAccess = (m: string) => domError('InvalidAccessError', m);

function reportError(err: unknown): void {
  // As the platform does for a throwing event handler: report, do not break the socket.
  setTimeout(() => { throw err; });
}

export default GatehouseSocket;
