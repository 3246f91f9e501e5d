/**
 * The HTTP fallback transport: opens a session with one POST (the gateway runs
 * the same admission as for a WebSocket upgrade), reads messages from a
 * streaming response — or long-polls when an intermediary buffers the stream —
 * and POSTs batches upstream. Messages are numbered both ways and kept until
 * acknowledged, so a broken request is simply repeated: nothing is lost,
 * duplicated or reordered.
 */
import {
  ACK, BINARY, CLOSE, END, FrameReader, HEADER, HEARTBEAT, KEY, PING, PONG, SEQ, TEXT,
  closeFrame, concat, frame, fromBase64Url, numberFrame, readClose, readNumber, writeHeader, type WireFrame,
} from './wire.js';
import type { Transport, TransportEvents } from './transport.js';

export interface FallbackOptions {
  fetch: typeof fetch;
  headers?: Record<string, string>;
  credentials: 'include' | 'same-origin' | 'omit';
  /** No first byte on a stream within this many ms → the stream is buffered: long-poll instead. */
  streamTimeout: number;
  /** A stream that trails the answers to requests by this many ms → an intermediary delays it: long-poll instead (0: never). */
  streamDelay: number;
  /** Start in long-polling mode. */
  poll: boolean;
  /** Give up after this many ms of failing requests. */
  retryTimeout: number;
  closeTimeout: number;
}

interface OpenAnswer {
  session: string; protocol: string; extensions: string;
  /** The session's secret (base64url): the first frame of every later request's body carries it. */
  key?: string;
  heartbeat: number; pollTimeout: number; maxBody: number; maxMessage: number; maxFrames: number;
  /** The gateway answers PING with PONG on the stream (older gateways refuse the frame). */
  ping?: boolean;
}

/**
 * A message kept until acknowledged: its type and payload; the frame header is
 * written when a batch is built, straight into the request body (one copy per
 * message, no frame buffer of its own).
 */
interface Outgoing { seq: number; type: number; payload: Uint8Array; size: number }

/** Acknowledge the downstream at least every this many bytes (the server's high-water mark is 64 KiB by default). */
const ACK_BYTES = 16 * 1024;
const ACK_DELAY = 50;
const MAX_BATCH_FRAMES = 1024;
/** Probes of a stream's path: this many answered ones decide; at most PROBE_ATTEMPTS are sent. */
const PROBES = 3;
const PROBE_ATTEMPTS = 6;
/** How long a PONG is waited for after its request was answered. */
const PONG_WAIT = 1000;
const DECODER = new TextDecoder();
const ENCODER = new TextEncoder();

export class FallbackTransport implements Transport {
  private answer?: OpenAnswer;
  /** The KEY frame every session request's body starts with (empty for a gateway that gives no key). */
  private keyFrame: Uint8Array = new Uint8Array(0);
  private readonly base: string;
  private state: 'connecting' | 'open' | 'closing' | 'closed' = 'connecting';
  private pollMode: boolean;
  private readonly abort = new AbortController();
  /** The stream being read now: aborted to switch to long-polling. */
  private streamCtl?: AbortController;
  /** Streams started so far: a probe is only judged on the stream it was sent on. */
  private streams = 0;
  private probed = false;
  /** Probe token → when its PONG arrived; and who waits for one. */
  private readonly pongs = new Map<number, number>();
  private pongWaiter?: () => void;

  // downstream
  private lastIn = 0;
  private ackedIn = 0;
  private unackedInBytes = 0;
  private ackTimer?: ReturnType<typeof setTimeout>;

  // upstream
  private nextOut = 1;
  private readonly outgoing: Outgoing[] = [];
  private outBytes = 0;
  private sending = false;
  /** Consecutive failed attempts of the batch in flight. */
  private sendRetries = 0;
  /** The gateway refused a batch (it closes the session): nothing more is sent. */
  private sendRefused = false;
  private failingSince = 0;
  private closeTimer?: ReturnType<typeof setTimeout>;
  private closeSent?: { code: number; reason: string };

  constructor(url: string, private readonly protocols: string[], private readonly opts: FallbackOptions, private readonly events: TransportEvents) {
    const u = new URL(url);
    u.protocol = u.protocol === 'wss:' ? 'https:' : u.protocol === 'ws:' ? 'http:' : u.protocol;
    u.hash = '';
    this.base = u.toString();
    this.pollMode = opts.poll;
    void this.open();
  }

  get bufferedAmount(): number { return this.outBytes; }
  /** (a method, so that checks after an await are not narrowed away) */
  private isClosed(): boolean { return this.state === 'closed'; }
  get mode(): 'stream' | 'poll' { return this.pollMode ? 'poll' : 'stream'; }

  send(data: string | Uint8Array): void {
    if (this.state !== 'open') {
      // As a WebSocket does after close(): counted, then dropped.
      return;
    }
    const isText = typeof data === 'string';
    const bytes = isText ? ENCODER.encode(data) : data;
    this.push(isText ? TEXT : BINARY, bytes, bytes.length);
  }

  close(code = 1000, reason = ''): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    if (this.state === 'connecting') {
      this.finish(1006, 'closed before the connection was established', false, 'connection closed before open');
      return;
    }
    this.state = 'closing';
    this.closeSent = { code, reason };
    this.push(CLOSE, closeFrame(code, reason).subarray(HEADER), 0);
    this.closeTimer = setTimeout(() => this.finish(1006, 'close handshake timed out', false), this.opts.closeTimeout);
  }

  // ---- open ------------------------------------------------------------------------

  private url(op: string, extra = ''): string {
    const u = new URL(this.base);
    if (op !== 'open') u.search = '';
    u.searchParams.set('gh', op);
    if (this.answer) u.searchParams.set('s', this.answer.session);
    return u.toString() + extra;
  }

  /** A request of the session: its body starts with the session's key (outside the URL, so it is in no log). */
  private sessionRequest(url: string, frames?: Uint8Array, signal?: AbortSignal): Promise<Response> {
    return this.request(url, frames ? concat([this.keyFrame, frames]) : this.keyFrame, signal);
  }

  /**
   * A request of the session. Without `signal`, it gets one of its own that the
   * session's close aborts until the answer's head is in: Node's fetch leaves
   * a listener on the signal it is given until the request is garbage
   * collected, so one signal for every request of a long session would gather
   * thousands (and Node's MaxListenersExceededWarning).
   */
  private request(url: string, body: Uint8Array | string | undefined, signal?: AbortSignal): Promise<Response> {
    if (!signal) {
      const session = this.abort.signal;
      const own = new AbortController();
      const onAbort = (): void => own.abort();
      if (session.aborted) own.abort(); else session.addEventListener('abort', onAbort);
      const done = (): void => session.removeEventListener('abort', onAbort);
      return this.fetchWith(url, body, own.signal).finally(done);
    }
    return this.fetchWith(url, body, signal);
  }

  private fetchWith(url: string, body: Uint8Array | string | undefined, signal: AbortSignal): Promise<Response> {
    // (built as a plain object: the DOM and Node typings of RequestInit differ)
    const init: Record<string, unknown> = {
      method: 'POST',
      // text/plain keeps every request "simple" for CORS: no preflight round trip.
      headers: { 'Content-Type': 'text/plain;charset=UTF-8', ...this.opts.headers },
      body,
      credentials: this.opts.credentials,
      cache: 'no-store',
      redirect: 'error',
      signal,
    };
    return this.opts.fetch(url, init as RequestInit);
  }

  private async open(): Promise<void> {
    let res: Response;
    try {
      res = await this.request(this.url('open'), JSON.stringify({ protocols: this.protocols }));
    } catch (err) {
      this.finish(1006, '', false, `fallback open failed: ${(err as Error).message}`);
      return;
    }
    if (res.status !== 200) {
      void res.body?.cancel();
      this.finish(1006, '', false, `fallback open refused: HTTP ${res.status}`, res.status);
      return;
    }
    let answer: OpenAnswer;
    try {
      answer = await res.json() as OpenAnswer;
    } catch (err) {
      this.finish(1006, '', false, 'fallback open: malformed answer');
      return;
    }
    // As a WebSocket client must: a subprotocol we did not offer fails the connection.
    if (typeof answer.session !== 'string' || typeof answer.protocol !== 'string'
      || (answer.protocol !== '' && !this.protocols.includes(answer.protocol))) {
      this.finish(1006, '', false, 'fallback open: server chose a subprotocol that was not offered');
      return;
    }
    if (this.state !== 'connecting') return;
    this.answer = answer;
    if (typeof answer.key === 'string') this.keyFrame = frame(KEY, fromBase64Url(answer.key));
    this.state = 'open';
    this.events.open(answer.protocol, answer.extensions ?? '');
    void this.downstream();
  }

  // ---- downstream ------------------------------------------------------------------

  private async downstream(): Promise<void> {
    let failures = 0;
    // After our own close() the answer comes in reply to the CLOSE we posted: stop reading then.
    while (this.state === 'open' || (this.state === 'closing' && !this.closeSent)) {
      const ok = this.pollMode ? await this.pollOnce() : await this.streamOnce();
      if (this.isClosed()) return;
      if (ok === 'fatal') return;
      if (ok) { failures = 0; this.failingSince = 0; continue; }
      failures++;
      if (!this.failingSince) this.failingSince = Date.now();
      if (Date.now() - this.failingSince > this.opts.retryTimeout) {
        this.finish(1006, 'connection to the gateway lost', false, 'fallback requests keep failing');
        return;
      }
      await delay(Math.min(50 * 2 ** Math.min(failures, 5), 1000));
    }
  }

  /** Returns true when the response ended normally, false on a broken request, 'fatal' when the session is gone. */
  private async streamOnce(): Promise<boolean | 'fatal'> {
    const ctl = new AbortController();
    this.streamCtl = ctl;
    this.streams++;
    const onAbort = (): void => ctl.abort();
    this.abort.signal.addEventListener('abort', onAbort);
    let gotByte = false;
    let watchdog: ReturnType<typeof setTimeout> | undefined;
    let buffered = false;
    const arm = (ms: number, firstByte: boolean): void => {
      if (watchdog) clearTimeout(watchdog);
      watchdog = setTimeout(() => { buffered = firstByte; ctl.abort(); }, ms);
    };
    // Nothing within streamTimeout: an intermediary holds the stream back.
    arm(this.opts.streamTimeout, true);
    try {
      const res = await this.sessionRequest(this.url('stream', `&a=${this.lastIn}`), undefined, ctl.signal);
      if (res.status !== 200) return this.refused(res);
      if (!res.body) return false;
      const reader = res.body.getReader();
      const parser = new FrameReader();
      let ended = false;
      while (!ended) {
        const { value, done } = await reader.read();
        if (done) break;
        if (!gotByte) {
          gotByte = true;
          if (!this.probed && this.answer!.ping && this.opts.streamDelay > 0) { this.probed = true; void this.probeStream(); }
        }
        // Silence for two heartbeats (and a margin) means a dead stream.
        arm(this.answer!.heartbeat * 2 + 2000, false);
        for (const f of parser.push(value, this.answer!.maxMessage + 8)) {
          if (f.type === END) { ended = true; break; }
          if (!this.onFrame(f)) { ctl.abort(); return false; }
          if (this.state === 'closed') { ctl.abort(); return 'fatal'; }
        }
      }
      if (ended) void reader.cancel().catch(() => undefined);
      return ended;
    } catch {
      if (buffered && !gotByte && this.state !== 'closed') this.pollMode = true;
      // Aborted by the probe, which switched to long-polling: carry on at once.
      return this.pollMode && this.state !== 'closed';
    } finally {
      if (this.streamCtl === ctl) this.streamCtl = undefined;
      if (watchdog) clearTimeout(watchdog);
      this.abort.signal.removeEventListener('abort', onAbort);
    }
  }

  private async pollOnce(): Promise<boolean | 'fatal'> {
    const ctl = new AbortController();
    const onAbort = (): void => ctl.abort();
    this.abort.signal.addEventListener('abort', onAbort);
    const watchdog = setTimeout(() => ctl.abort(), this.answer!.pollTimeout + 10_000);
    try {
      const res = await this.sessionRequest(this.url('poll', `&a=${this.lastIn}`), undefined, ctl.signal);
      if (res.status !== 200) return this.refused(res);
      const body = new Uint8Array(await res.arrayBuffer());
      const frames = new FrameReader().push(body, this.answer!.maxMessage + 8);
      for (const f of frames) {
        if (!this.onFrame(f)) return false;
        if (this.state === 'closed') return 'fatal';
      }
      // The next poll carries the acknowledgement.
      this.ackedIn = this.lastIn;
      this.unackedInBytes = 0;
      return true;
    } catch {
      return false;
    } finally {
      clearTimeout(watchdog);
      this.abort.signal.removeEventListener('abort', onAbort);
    }
  }

  private expected = 0;

  /** One downstream frame. Returns false when the stream is out of step (re-request from our acknowledgement). */
  private onFrame(f: WireFrame): boolean {
    switch (f.type) {
      case SEQ:
        this.expected = readNumber(f.payload);
        return this.expected <= this.lastIn + 1;
      case HEARTBEAT:
      case END:
      case ACK:
        if (f.type === ACK) this.acked(readNumber(f.payload));
        return true;
      case PONG:
        this.pongs.set(readNumber(f.payload), Date.now());
        this.pongWaiter?.();
        return true;
      case TEXT:
      case BINARY:
      case CLOSE: {
        const n = this.expected++;
        if (n <= this.lastIn) return true; // seen before the break: skip, no duplicate
        if (n !== this.lastIn + 1) return false;
        this.lastIn = n;
        this.unackedInBytes += f.payload.length + HEADER;
        if (f.type === CLOSE) {
          const { code, reason } = readClose(f.payload);
          this.serverClosed(code, reason);
          return true;
        }
        this.events.message(f.type === TEXT ? DECODER.decode(f.payload) : f.payload.slice());
        if (!this.pollMode) this.scheduleAck();
        return true;
      }
      default:
        return false;
    }
  }

  private refused(res: Response): 'fatal' | false {
    void res.body?.cancel().catch(() => undefined);
    // 404: the session is gone (reaped, or ended); 4xx: refused for good. 5xx, and the "not now"
    // answers (429: too many requests of this address are still showing their session's key),
    // try again within retryTimeout, as a send does.
    if (res.status >= 400 && res.status < 500 && !isBusy(res.status)) {
      // The gateway may have explained itself with a CLOSE on the other request; give it a moment.
      setTimeout(() => this.finish(1006, '', false, `fallback request refused: HTTP ${res.status}`, res.status), 200);
      return 'fatal';
    }
    return false;
  }

  private scheduleAck(): void {
    if (this.unackedInBytes >= ACK_BYTES) { this.pump(true); return; }
    if (!this.ackTimer) this.ackTimer = setTimeout(() => { this.ackTimer = undefined; this.pump(true); }, ACK_DELAY);
  }

  private serverClosed(code: number, reason: string): void {
    // Acknowledge the CLOSE so the gateway can end the session at once (not aborted by finish), then report it.
    this.outgoing.length = 0;
    this.outBytes = 0;
    const ack = numberFrame(ACK, this.lastIn);
    this.sessionRequest(this.url('send'), ack, new AbortController().signal).then((r) => r.body?.cancel(), () => undefined);
    this.finish(code, reason, true);
  }

  // ---- is the stream delayed? ---------------------------------------------------------

  /**
   * HAProxy (and any intermediary that sends an unfinished response with
   * MSG_MORE or Nagle's algorithm) holds each small write of a stream back,
   * about 200 ms, while complete responses pass at once: every message then
   * waits. Nothing is lost, so the stream's first byte does not reveal it.
   * The probe does: a PING posted like a batch is answered with a PONG on the
   * stream before its request is answered; a PONG that trails the answer by
   * `streamDelay` or more, on most of PROBES probes, means long-polling
   * (whose responses are complete) is the faster path. (Most, not each: the
   * first probe goes out as the stream's first bytes arrive, and its PONG may
   * join a write the intermediary is already holding and arrive early — seen
   * with a client fast enough to probe within HAProxy's 200 ms.)
   */
  private async probeStream(): Promise<void> {
    const lags: number[] = [];
    for (let token = 1; token <= PROBE_ATTEMPTS && lags.length < PROBES; token++) {
      const lag = await this.probeOnce(token);
      if (this.state !== 'open' || this.pollMode) return;
      if (lag !== undefined) lags.push(lag);
    }
    const median = lags.sort((a, b) => a - b)[PROBES >> 1];
    if (lags.length === PROBES && median >= this.opts.streamDelay) {
      this.pollMode = true;
      this.streamCtl?.abort();
    }
  }

  /** One probe: how long its PONG trailed the answer; undefined when it tells nothing (a failed request, a new stream). */
  private async probeOnce(token: number): Promise<number | undefined> {
    const stream = this.streams;
    let answeredAt: number;
    try {
      const res = await this.sessionRequest(this.url('send'), numberFrame(PING, token));
      await res.arrayBuffer();
      if (res.status !== 200) return undefined;
      answeredAt = Date.now();
    } catch {
      return undefined;
    }
    const arrived = this.pongs.get(token) ?? await this.pong(token);
    this.pongs.delete(token);
    if (arrived !== undefined) return Math.max(0, arrived - answeredAt);
    // No PONG: the stream it was written to ended meanwhile (tells nothing), or it is held back still.
    return this.streams === stream && this.streamCtl ? PONG_WAIT : undefined;
  }

  private pong(token: number): Promise<number | undefined> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.pongWaiter = undefined;
        resolve(this.pongs.get(token));
      };
      const timer = setTimeout(done, PONG_WAIT);
      this.pongWaiter = () => { if (this.pongs.has(token)) done(); };
    });
  }

  // ---- upstream --------------------------------------------------------------------

  private push(type: number, payload: Uint8Array, size: number): void {
    this.outgoing.push({ seq: this.nextOut++, type, payload, size });
    this.outBytes += size;
    // Sends of one task (e.g. replies to every message of one received chunk) go in one batch.
    if (!this.pumpScheduled) {
      this.pumpScheduled = true;
      queueMicrotask(() => { this.pumpScheduled = false; this.pump(); });
    }
  }
  private pumpScheduled = false;

  /** Send what is waiting (and our acknowledgement) in one POST; one POST in flight at a time. */
  /** `ackNow`: the acknowledgement cannot wait for the next batch (enough bytes, or its timer ran out). */
  private pump(ackNow = false): void {
    if (!this.answer || this.state === 'closed' || this.sendRefused) return;
    const needAck = this.lastIn > this.ackedIn;
    if (this.sending) {
      // A batch is in flight (held while the gateway is paused): acknowledge on the side, so the
      // gateway's send buffer drains and nothing waits on anything else. Otherwise the
      // acknowledgement rides with the next batch.
      if (needAck && ackNow && !this.acking) this.sendAck();
      return;
    }
    if (this.outgoing.length === 0 && !needAck) return;
    this.sending = true;
    if (this.ackTimer) { clearTimeout(this.ackTimer); this.ackTimer = undefined; }
    let bytes = 0;
    const limit = this.answer.maxBody - 64 - this.keyFrame.length;
    let count = 0;
    const outgoing = this.outgoing;
    for (; count < outgoing.length; count++) {
      const size = HEADER + outgoing[count].payload.length;
      if (count > 0 && (bytes + size > limit || count >= MAX_BATCH_FRAMES)) break;
      bytes += size;
    }
    // The session key, SEQ of the first message, the messages, our ACK: one body, each message copied once.
    const seqFrame = count > 0 ? numberFrame(SEQ, outgoing[0].seq) : undefined;
    const ackValue = this.lastIn;
    const ackFrame = numberFrame(ACK, ackValue);
    const key = this.keyFrame;
    const body = new Uint8Array(key.length + (seqFrame?.length ?? 0) + bytes + ackFrame.length);
    body.set(key, 0);
    let off = key.length;
    if (seqFrame) { body.set(seqFrame, off); off += seqFrame.length; }
    for (let i = 0; i < count; i++) {
      const { type, payload } = outgoing[i];
      writeHeader(body, off, type, payload.length);
      body.set(payload, off + HEADER);
      off += HEADER + payload.length;
    }
    body.set(ackFrame, off);
    void this.postBatch(body, ackValue);
  }

  private async postBatch(body: Uint8Array, ackValue: number): Promise<void> {
    let retry = false;
    let stillArriving = false;
    try {
      const res = await this.request(this.url('send'), body);
      if (res.status === 200) {
        const frames = new FrameReader().push(new Uint8Array(await res.arrayBuffer()), 1024);
        this.ackedIn = Math.max(this.ackedIn, ackValue);
        this.unackedInBytes = 0;
        this.failingSince = 0;
        for (const f of frames) {
          if (f.type === ACK) this.acked(readNumber(f.payload));
          else if (f.type === CLOSE && this.closeSent) {
            this.finish(this.closeSent.code, this.closeSent.reason, true);
          }
        }
      } else {
        void res.body?.cancel().catch(() => undefined);
        if (res.status >= 400 && res.status < 500 && !isBusy(res.status)) {
          // The gateway refused the batch and closes the session; its CLOSE (with the code a
          // WebSocket would get) comes on the downstream. Stop sending for good: a later batch
          // would start past what the gateway has received, a gap it must refuse (1002).
          this.sendRefused = true;
          this.outgoing.length = 0;
          this.outBytes = 0;
          setTimeout(() => this.finish(1006, '', false, `fallback send refused: HTTP ${res.status}`, res.status), 2000);
          return;
        }
        retry = true;
        stillArriving = res.status === 409;
      }
    } catch {
      retry = true;
    } finally {
      this.sending = false;
    }
    if (this.state === 'closed') return;
    if (retry) {
      // 409: the gateway answers, and is still receiving an earlier attempt, which it drops after its
      // own request_timeout at the latest (30 s by default, longer than retryTimeout): not a lost gateway.
      if (stillArriving) this.failingSince = 0;
      else if (!this.failingSince) this.failingSince = Date.now();
      if (this.failingSince && Date.now() - this.failingSince > this.opts.retryTimeout) {
        this.finish(1006, 'connection to the gateway lost', false, 'fallback send keeps failing');
        return;
      }
      // The same numbers again (the gateway skips what it has): an earlier attempt may still be
      // arriving (409) or may have been received with its answer lost. Back off while it lasts.
      this.sendRetries++;
      await delay(Math.min(100 * 2 ** Math.min(this.sendRetries - 1, 4), 1000));
    } else {
      this.sendRetries = 0;
    }
    this.pump();
  }

  private acking = false;

  private sendAck(): void {
    this.acking = true;
    if (this.ackTimer) { clearTimeout(this.ackTimer); this.ackTimer = undefined; }
    const value = this.lastIn;
    this.sessionRequest(this.url('send'), numberFrame(ACK, value))
      .then(async (res) => {
        await res.arrayBuffer();
        if (res.status === 200) { this.ackedIn = Math.max(this.ackedIn, value); this.unackedInBytes = 0; }
      }, () => undefined)
      .finally(() => { this.acking = false; });
  }

  private acked(seq: number): void {
    let drop = 0;
    while (drop < this.outgoing.length && this.outgoing[drop].seq <= seq) { this.outBytes -= this.outgoing[drop].size; drop++; }
    if (drop > 0) this.outgoing.splice(0, drop);
  }

  private finish(code: number, reason: string, wasClean: boolean, error?: string, status?: number): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.closeTimer) clearTimeout(this.closeTimer);
    if (this.ackTimer) clearTimeout(this.ackTimer);
    // Leave an in-flight final acknowledgement alone; abort everything else.
    this.abort.abort();
    this.events.close(code, reason, wasClean, error, status);
  }
}

/**
 * Answers that mean "not now", not "never" (429 also to a stream or poll): 409, another upload of
 * the session is still arriving (an earlier attempt of this very batch, held
 * on its way, or an acknowledgement or probe sent beside it); 429, too many
 * requests from this address are not yet bound to a session. The gateway has
 * not read the batch: it is sent again, with the same numbers.
 */
function isBusy(status: number): boolean {
  return status === 409 || status === 429;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
