/**
 * The fallback's requests in Node, over `node:http` / `node:https` with a
 * keep-alive agent, instead of Node's `fetch`: fetch builds a WHATWG Request,
 * Headers and a web stream per request and adds six headers of its own
 * (accept, accept-language, sec-fetch-mode, user-agent, accept-encoding,
 * connection), which the gateway then parses. Here a request carries Host,
 * Connection, Content-Type, Content-Length and the caller's headers.
 *
 * It is a `fetch` for what the transport uses of one: POST with a body and
 * headers, an AbortSignal, and a Response with `status`, `arrayBuffer()`,
 * `json()` and `body.getReader()` / `body.cancel()`. Browsers keep their own
 * fetch (this module loads `node:http` only when called).
 */

/** The parts of node:http this module uses (the client is built without Node's types). */
interface NodeIncoming {
  statusCode?: number;
  on(event: 'data', fn: (chunk: Uint8Array) => void): void;
  on(event: 'end' | 'close', fn: () => void): void;
  on(event: 'error', fn: (err: Error) => void): void;
  pause(): void;
  resume(): void;
  destroy(): void;
  readonly complete: boolean;
}
interface NodeRequest {
  on(event: 'response', fn: (res: NodeIncoming) => void): void;
  on(event: 'error', fn: (err: Error) => void): void;
  end(body?: Uint8Array | string): void;
  destroy(): void;
}
interface NodeHttp {
  Agent: new (options: { keepAlive: boolean }) => unknown;
  request(url: string, options: Record<string, unknown>): NodeRequest;
}

/** True where this runs in Node (not a browser, not a worker of one). */
export function inNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string' && typeof (globalThis as { window?: unknown }).window === 'undefined';
}

interface Loaded { http: NodeHttp; https: NodeHttp; agents: { http: unknown; https: unknown } }
let loaded: Promise<Loaded> | undefined;

function load(): Promise<Loaded> {
  // (specifiers held in variables: bundlers leave them to the runtime, and browsers never get here)
  const httpName = 'node:http';
  const httpsName = 'node:https';
  loaded ??= Promise.all([import(httpName) as Promise<NodeHttp>, import(httpsName) as Promise<NodeHttp>]).then(([http, https]) => ({
    http, https, agents: { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) },
  }));
  return loaded;
}

/** A response's body, read chunk by chunk (the stream) or whole (everything else). */
class NodeBody {
  private readonly queue: Uint8Array[] = [];
  private ended = false;
  private error?: Error;
  private waiter?: () => void;

  constructor(private readonly res: NodeIncoming) {
    // (a plain Uint8Array over the chunk's bytes: a Node Buffer's slice() is a view, not the copy the transport makes)
    res.on('data', (chunk) => { this.queue.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)); this.wake(); });
    res.on('end', () => { this.ended = true; this.wake(); });
    res.on('error', (err) => { this.error = err; this.wake(); });
    res.on('close', () => {
      if (!this.ended && !this.error) this.error = new Error('the response was cut off');
      this.wake();
    });
  }

  getReader(): { read(): Promise<{ value: Uint8Array; done: false } | { value: undefined; done: true }>; cancel(): Promise<void> } {
    return { read: () => this.read(), cancel: () => this.cancel() };
  }

  cancel(): Promise<void> {
    this.res.destroy();
    return Promise.resolve();
  }

  async read(): Promise<{ value: Uint8Array; done: false } | { value: undefined; done: true }> {
    while (this.queue.length === 0) {
      if (this.error) throw this.error;
      if (this.ended) return { value: undefined, done: true };
      await new Promise<void>((resolve) => { this.waiter = resolve; });
    }
    return { value: this.queue.shift()!, done: false };
  }

  async all(): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { value, done } = await this.read();
      if (done) break;
      parts.push(value);
      size += value.length;
    }
    if (parts.length === 1) return parts[0];
    const out = new Uint8Array(size);
    let off = 0;
    for (const p of parts) { out.set(p, off); off += p.length; }
    return out;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}

/** The Response the transport reads. */
class NodeResponse {
  readonly body: NodeBody;
  constructor(readonly status: number, res: NodeIncoming) { this.body = new NodeBody(res); }
  get ok(): boolean { return this.status >= 200 && this.status < 300; }
  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = await this.body.all();
    return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
      ? bytes.buffer as ArrayBuffer
      : bytes.slice().buffer as ArrayBuffer;
  }
  async json(): Promise<unknown> {
    return JSON.parse(new TextDecoder().decode(await this.body.all()));
  }
}

/** A `fetch` over node:http for the transport's requests (see the top of this file). */
export async function nodeFetch(url: string, init: { method?: string; headers?: Record<string, string>; body?: Uint8Array | string; signal?: AbortSignal }): Promise<Response> {
  const { http, https, agents } = await load();
  const secure = url.startsWith('https:');
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(url, {
      method: init.method ?? 'GET',
      headers: init.headers,
      agent: secure ? agents.https : agents.http,
      signal: init.signal,
    });
    req.on('response', (res) => resolve(new NodeResponse(res.statusCode ?? 0, res) as unknown as Response));
    req.on('error', reject);
    req.end(init.body);
  });
}
