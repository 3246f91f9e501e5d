/**
 * The `tcp` service, a websockify-style bridge: each admitted WebSocket client
 * gets its own TCP (or verified TLS) connection to the backend, dialled in
 * `open`, before the client is sent its 101 — so an unreachable backend is a
 * 502 and a slow one a 504, never an accepted WebSocket that dies at once.
 *
 * Client binary messages become bytes on the socket; text messages are
 * refused with 1003 or passed as their UTF-8 bytes (`text`). Backend bytes
 * become binary messages, coalesced up to `frame_size`. A backend FIN closes
 * the client with 1000, a reset or error with 1014; a client that goes away
 * takes its backend socket with it.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import type { Admission } from '../admitted.js';
import type { ChannelSink, CloseInfo } from '../channel.js';
import type { ServiceConfig } from '../config/schema.js';
import { BackendError } from '../errors.js';
import type { RelayEnd } from '../relay/end.js';
import { backendTlsOptions } from './backend-tls.js';
import { LiveRelays, RelayedSession, observeBackendConnect, type BackendServiceDeps } from './backend-session.js';
import type { Service, ServiceSession } from './types.js';

export type TcpServiceConfig = Extract<ServiceConfig, { type: 'tcp' }>;

/** After a clean FIN to the backend, how long it may take to close its side before the socket is dropped. */
const BACKEND_CLOSE_TIMEOUT_MS = 5_000;

export class TcpService implements Service {
  readonly name: string;
  private readonly host: string;
  private readonly port: number;
  private readonly tlsOptions?: tls.ConnectionOptions;
  private readonly live = new LiveRelays();
  private shuttingDown = false;

  constructor(private readonly config: TcpServiceConfig, private readonly deps: BackendServiceDeps) {
    this.name = config.name;
    const url = new URL(config.backend);
    this.host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    this.port = Number(url.port);
    if (url.protocol === 'tls:') this.tlsOptions = backendTlsOptions(config.tls, this.host, config.name);
  }

  /** Open relays (for tests and the admin view). */
  get liveConnections(): number {
    return this.live.size;
  }

  async open(admission: Admission): Promise<ServiceSession> {
    if (this.shuttingDown) throw new BackendError('GH_SERVICE_DRAINING', 503, `service ${this.name} is shutting down`);
    const started = performance.now();
    let socket: net.Socket;
    try {
      socket = await this.dial(admission);
    } catch (err) {
      observeBackendConnect(this.deps, this.name, started, false);
      throw err;
    }
    observeBackendConnect(this.deps, this.name, started, true);
    return new TcpSession(new TcpLink(socket, this.config.frame_size, this.deps.sendStallTimeout), admission, this.deps, this.live);
  }

  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    await this.live.drain();
  }

  private dial(admission: Admission): Promise<net.Socket> {
    const { host, port } = this;
    return new Promise((resolve, reject) => {
      const socket = this.tlsOptions
        ? tls.connect({ ...this.tlsOptions, host, port })
        : net.connect({ host, port });
      const readyEvent = this.tlsOptions ? 'secureConnect' : 'connect';
      let settled = false;
      const fail = (err: BackendError): void => {
        // Once: a timed-out socket may still report an error while being destroyed.
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.removeListener(readyEvent, ready);
        socket.destroy();
        this.deps.metrics.inc('gatehouse_backend_failures_total', { service: this.name, code: err.code });
        this.deps.log.warn({ connection: admission.id, service: this.name, code: err.code, cause: (err.cause as Error | undefined)?.message }, 'backend connect failed');
        reject(err);
      };
      const timer = setTimeout(() => {
        fail(new BackendError('GH_BACKEND_TIMEOUT', 504, `backend of ${this.name} did not connect within ${this.config.connect_timeout} ms`));
      }, this.config.connect_timeout);
      const onError = (err: NodeJS.ErrnoException): void => {
        const tlsFailure = this.tlsOptions !== undefined && !/^E[A-Z]+$/.test(err.code ?? '');
        fail(new BackendError(tlsFailure ? 'GH_BACKEND_TLS' : 'GH_BACKEND_UNREACHABLE', 502,
          `backend of ${this.name} ${tlsFailure ? 'failed TLS verification' : 'is unreachable'} (${err.code ?? 'error'})`, { cause: err }));
      };
      const ready = (): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.removeListener('error', onError);
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 30_000);
        resolve(socket);
      };
      socket.on('error', onError);
      socket.once(readyEvent, ready);
    });
  }
}

class TcpSession extends RelayedSession {
  constructor(link: TcpLink, admission: Admission, deps: BackendServiceDeps, live: LiveRelays) {
    super(admission, link, deps, live);
  }

  /** Bytes, not messages: what an inspector sends here is written to the socket, and what comes back are slices of the stream. */
  override get backendStream(): boolean {
    return true;
  }

  /** Text messages are not bytes: refused (1003) unless the service says `text: pass` or an inspector reads the protocol. */
  override get binaryOnly(): boolean {
    return (this.admission.service as TcpServiceConfig).text === 'reject';
  }

  /** A byte-stream backend has no "going away": a client that vanished takes its socket at once. */
  override get dropBackendWhenClientVanishes(): boolean {
    return true;
  }

  abort(): void {
    this.backend.terminate();
  }
}

/**
 * A TCP socket seen as one side of a relay: bytes out, binary messages in.
 * Reports exactly one CloseInfo: a FIN from the backend is a clean remote
 * close (1000), an error or reset a transport failure (1006 → the client gets
 * 1014), and a close we asked for a local one.
 */
export class TcpLink implements RelayEnd {
  private sink?: ChannelSink;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  /** The relay paused us: no more messages until resume (what is pending waits). */
  private paused = false;
  private closeInfo?: CloseInfo;
  private reported = false;
  private localClose?: { code: number; reason: string };
  private closeTimer?: NodeJS.Timeout;
  /** Armed while our writes wait for the backend to read (`sendStallTimeout`), with the delivered count it started from. */
  private stallTimer?: NodeJS.Timeout;
  private stallDelivered = 0;
  private _closed = false;

  /** `sendStallTimeout`: ms the backend may leave a full queue unread before the link is dropped (0: never). */
  constructor(private readonly socket: net.Socket, private readonly frameSize: number, private readonly sendStallTimeout = 0) {
    // Listeners from the start: an error before the client is attached must not crash the process.
    socket.on('error', (err: NodeJS.ErrnoException) => this.settle({ code: 1006, reason: err.code ?? 'error', wasClean: false, initiator: 'transport' }));
    socket.on('end', () => {
      if (this.localClose) return; // the backend answering our FIN: reported on 'close'
      // Everything the backend sent before its FIN is delivered first, paused or not
      // (Node only reports 'end' once the bytes before it were read).
      this.paused = false;
      this.flush();
      this.settle({ code: 1000, reason: '', wasClean: true, initiator: 'remote' });
    });
    socket.on('close', () => {
      this._closed = true;
      if (this.closeTimer) clearTimeout(this.closeTimer);
      if (this.stallTimer) clearTimeout(this.stallTimer);
      const local = this.localClose;
      this.settle(local
        ? { code: local.code, reason: local.reason, wasClean: true, initiator: 'local' }
        : { code: 1006, reason: 'closed', wasClean: false, initiator: 'transport' });
    });
    socket.on('drain', () => this.sink?.onDrain?.());
  }

  get closed(): boolean {
    return this._closed || this.localClose !== undefined || this.closeInfo !== undefined;
  }

  attach(sink: ChannelSink): void {
    this.sink = sink;
    // Reading starts only now: bytes the backend sent before the 101 wait in the kernel.
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    if (this.closeInfo) queueMicrotask(() => this.report());
  }

  sendFragment(data: Buffer, _isBinary: boolean, _first: boolean, _fin: boolean): boolean {
    if (this.closed) return true;
    if (data.length === 0) return !this.socket.writableNeedDrain;
    const ok = this.socket.write(data);
    if (!ok && this.sendStallTimeout > 0 && this.stallTimer === undefined) this.watchStall();
    return ok;
  }

  /**
   * The relay pauses the client while the backend does not read; without a
   * bound a silent client behind a stuck backend would stay open for ever.
   * No byte leaving the queue for `sendStallTimeout` drops the link (the
   * client then gets 1014).
   */
  private watchStall(): void {
    this.stallDelivered = this.delivered();
    this.stallTimer = setTimeout(() => {
      this.stallTimer = undefined;
      if (this.socket.writableLength === 0 || this._closed) return;
      if (this.delivered() !== this.stallDelivered) {
        this.watchStall();
        return;
      }
      this.settle({ code: 1006, reason: 'backend stalled', wasClean: false, initiator: 'transport' });
    }, this.sendStallTimeout);
    this.stallTimer.unref();
  }

  private delivered(): number {
    return this.socket.bytesWritten - this.socket.writableLength;
  }

  pause(): void {
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    this.paused = false;
    if (this.closed) return;
    // What was read before the pause goes first, then the socket is read again.
    this.flush();
    if (!this.paused) this.socket.resume();
  }

  /** A clean end: what was written is flushed, then FIN; dropped if the backend does not close its side in time. */
  close(code = 1000, reason = ''): void {
    if (this.closed) return;
    this.localClose = { code, reason };
    this.socket.end();
    // Read again (what arrives now is dropped: the relay is ending), or the
    // backend's FIN would sit behind unread bytes until the timer.
    this.paused = false;
    this.socket.resume();
    this.closeTimer = setTimeout(() => this.socket.destroy(), BACKEND_CLOSE_TIMEOUT_MS);
    this.closeTimer.unref();
  }

  terminate(): void {
    if (!this.localClose) this.localClose = { code: 1006, reason: 'terminated' };
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.localClose) return; // closing: nothing more is relayed
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= this.frameSize) {
      this.flush();
    } else if (!this.flushScheduled) {
      // Reads that land in the same event-loop turn go out as one message.
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  private flush(): void {
    while (this.pendingBytes > 0 && this.sink && !this.reported && !this.paused) {
      const size = Math.min(this.frameSize, this.pendingBytes);
      let message: Buffer;
      if (this.pending[0].length === size) {
        message = this.pending.shift()!;
      } else if (this.pending[0].length > size) {
        message = this.pending[0].subarray(0, size);
        this.pending[0] = this.pending[0].subarray(size);
      } else {
        message = Buffer.allocUnsafe(size);
        let off = 0;
        while (off < size) {
          const head = this.pending[0];
          const take = Math.min(head.length, size - off);
          head.copy(message, off, 0, take);
          off += take;
          if (take === head.length) this.pending.shift();
          else this.pending[0] = head.subarray(take);
        }
      }
      this.pendingBytes -= size;
      this.sink.onFragment?.(message, true, true, true, size);
    }
  }

  private settle(info: CloseInfo): void {
    if (this.closeInfo) return;
    this.closeInfo = info;
    if (info.initiator === 'transport') this.socket.destroy();
    if (this.sink) this.report();
  }

  private report(): void {
    if (this.reported || !this.closeInfo) return;
    this.reported = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.sink?.onClose?.(this.closeInfo);
  }
}
