/**
 * A fallback session: the HTTP transport's Channel. Downstream, messages are
 * numbered and kept until the client acknowledges them, so a broken stream or
 * poll is resumed from the client's last acknowledgement without loss,
 * duplication or reordering. Upstream, batches carry their first number; ones
 * already delivered are dropped, a gap is a protocol error.
 *
 * The session knows nothing of HTTP routing or policy: the endpoints
 * (front/fallback-endpoints.ts) authenticate each request and hand it a response to fill.
 */
import type { ServerResponse } from 'node:http';
import type { Admission } from '../admitted.js';
import type { Channel, ChannelSink, CloseInfo } from '../channel.js';
import type { FallbackSettings } from '../config/fallback.js';
import { monoClock } from '../clock.js';
import {
  FrameType, encodeClose, encodeEmpty, encodeMessage, encodeNumber, type Frame, FRAME_HEADER_BYTES,
} from './wire.js';

export type DownstreamMode = 'stream' | 'poll';

interface OutEntry { seq: number; frame: Buffer }

type InItem =
  | { kind: 'message'; data: Buffer; isBinary: boolean }
  | { kind: 'close'; code: number; reason: string }
  /** the reply to an upstream request, answered once the messages before it are handed to the service */
  | { kind: 'reply'; reply: () => void };

interface Downstream {
  mode: DownstreamMode;
  res: ServerResponse;
  /** bytes written in this response (streams rotate at response_limit) */
  bytes: number;
  timer?: NodeJS.Timeout;
}

export interface FallbackSessionOptions {
  /** The secret session id (only the registry and the client know it). */
  id: string;
  admission: Admission;
  settings: FallbackSettings;
  /**
   * Response headers every downstream answer carries (no-store, CORS, ...), as
   * a flat name/value list, built once for the session: `writeHead` takes it as it is.
   */
  headers: readonly string[];
  /** Called once when the session has ended, to unregister it. */
  onEnd: (session: FallbackSession, info: CloseInfo) => void;
  /**
   * True while the gateway drains: then the session's CLOSE, once written to
   * the client, ends it without waiting for the acknowledgement — that would
   * come on a new request, which the closed listeners no longer accept, so
   * waiting held the drain for `close_timeout`.
   */
  draining?: () => boolean;
}

export class FallbackSession implements Channel {
  readonly transport = 'fallback' as const;
  readonly extensions = '';
  readonly admission: Admission;
  readonly id: string;

  private readonly settings: FallbackSettings;
  private sink?: ChannelSink;
  private readonly out: OutEntry[] = [];
  /** number the next outbound message-like frame gets */
  private nextOutSeq = 1;
  /** highest outbound number the client has acknowledged */
  private ackedOut = 0;
  private outBytes = 0;
  /** payload bytes the client has acknowledged, a running total */
  private ackedBytes = 0;
  private full = false;
  /** highest inbound number accepted */
  private lastIn = 0;
  private readonly inbound: InItem[] = [];
  private inboundBytes = 0;
  private delivering = false;
  private paused = false;
  private down?: Downstream;
  /** in-flight upstream requests (their replies wait in `inbound`) */
  private pendingUps = 0;
  private state: 'open' | 'closing' | 'closed' = 'open';
  private closeSeq = 0;
  private localClose?: { code: number; reason: string };
  private closeTimer?: NodeJS.Timeout;
  /**
   * Ends the session after `session_timeout` without a request. Not re-armed
   * per request (that was two timers per message): a request notes the time
   * in `lastActive`, and the timer, when it fires, waits out what is left.
   */
  private idleTimer?: NodeJS.Timeout;
  private lastActive = monoClock();
  /** The stream and poll answers' headers: the session's own, then the type. */
  private readonly streamHeaders: string[];
  private readonly pollHeaders: string[];
  private heartbeatTimer?: NodeJS.Timeout;
  private remoteCloseCode?: number;
  /** highest outbound number written to a downstream so far (what a new downstream would re-send) */
  private writtenThrough = 0;
  /** bytes re-sent since the client last acknowledged progress */
  private resent = 0;
  /** stream frames waiting for this tick's write */
  private pendingWrite: Buffer[] = [];
  /**
   * The downstream's write (stream) or answer (poll) is scheduled for the end
   * of this tick, so that the sends of one tick share one write or response.
   * One flag and one bound function per session, not a closure per message.
   */
  private flushScheduled = false;
  private readonly flush = (): void => {
    this.flushScheduled = false;
    const down = this.down;
    if (down?.mode === 'stream') {
      if (this.pendingWrite.length === 0) return;
      const parts = this.pendingWrite;
      this.pendingWrite = [];
      this.writeStream(parts);
    } else if (down !== undefined && this.out.length > 0) {
      this.answerPoll();
    }
  };
  private closedInfo?: CloseInfo;
  private readonly closeWatchers: Array<(info: CloseInfo) => void> = [];
  private fragments: Buffer[] = [];
  private fragmentBinary = false;

  constructor(private readonly opts: FallbackSessionOptions) {
    this.id = opts.id;
    this.admission = opts.admission;
    this.settings = opts.settings;
    this.streamHeaders = [...opts.headers, 'Content-Type', 'application/octet-stream', 'X-Accel-Buffering', 'no'];
    this.pollHeaders = [...opts.headers, 'Content-Type', 'application/octet-stream', 'Content-Length', ''];
    this.armIdle(this.settings.session_timeout);
  }

  get protocol(): string { return this.admission.protocol; }
  get bufferedAmount(): number { return this.outBytes; }
  get deliveredBytes(): number { return this.ackedBytes; }
  get closed(): boolean { return this.state === 'closed'; }
  /** Bytes received from the client and not yet handed to the service (held while paused). */
  get inboundBuffered(): number { return this.inboundBytes; }
  /** highest upstream number delivered, for the acknowledgement in replies */
  get acknowledged(): number { return this.lastIn; }
  /** The kind of downstream request attached now, if any (diagnostics, tests). */
  get downstream(): DownstreamMode | undefined { return this.down?.mode; }

  whenClosed(fn: (info: CloseInfo) => void): void {
    if (this.closedInfo) fn(this.closedInfo);
    else this.closeWatchers.push(fn);
  }

  attach(sink: ChannelSink): void {
    this.sink = sink;
    this.deliver();
  }

  send(data: Buffer | string, isBinary: boolean): boolean {
    if (this.state !== 'open') return false;
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    this.enqueueOut(encodeMessage(buf, isBinary));
    if (this.state !== 'open') return false;
    if (this.outBytes >= this.settings.high_water_mark) { this.full = true; return false; }
    return true;
  }

  /** The wire carries whole messages, so pieces are assembled here, within max_message (the relay's bound). */
  sendFragment(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): boolean {
    if (first) { this.fragments = []; this.fragmentBinary = isBinary; }
    this.fragments.push(data);
    if (!fin) return this.state === 'open' && this.outBytes < this.settings.high_water_mark;
    const whole = this.fragments.length === 1 ? this.fragments[0] : Buffer.concat(this.fragments);
    this.fragments = [];
    return this.send(whole, this.fragmentBinary);
  }

  pause(): void { this.paused = true; }
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.deliver();
  }

  /** Start the close: a CLOSE frame goes after the pending messages; the client acknowledges it. */
  close(code = 1000, reason = ''): void {
    if (this.state !== 'open') return;
    this.state = 'closing';
    this.localClose = { code, reason };
    this.closeSeq = this.nextOutSeq;
    this.enqueueOut(encodeClose(code, truncateReason(reason)), true);
    this.closeTimer = setTimeout(() => this.finish({ code, reason, wasClean: false, initiator: 'local' }), this.settings.close_timeout);
    this.closeTimer.unref?.();
  }

  terminate(): void {
    this.finish({ code: 1006, reason: 'terminated', wasClean: false, initiator: 'local' });
  }

  /** End at once with `code`, without waiting for the client (it is the reason the session cannot go on). */
  end(code: number, reason: string): void {
    this.finish({ code, reason, wasClean: false, initiator: 'local' });
  }

  // ---- called by the endpoints -------------------------------------------------

  /**
   * Accept the client's acknowledgement of downstream messages up to `seq`.
   * Returns false when `seq` names a message never sent (a forged request).
   */
  acknowledge(seq: number): boolean {
    if (seq >= this.nextOutSeq) return false;
    if (seq <= this.ackedOut) return true;
    this.ackedOut = seq;
    this.resent = 0;
    let drop = 0;
    let acked = 0;
    while (drop < this.out.length && this.out[drop].seq <= seq) { acked += this.out[drop].frame.length - FRAME_HEADER_BYTES; drop++; }
    this.outBytes -= acked;
    this.ackedBytes += acked;
    if (drop > 0) this.out.splice(0, drop);
    if (this.state === 'closing' && this.closeSeq > 0 && seq >= this.closeSeq && this.localClose) {
      this.finish({ ...this.localClose, wasClean: true, initiator: 'local' });
      return true;
    }
    if (this.full && this.outBytes < this.settings.high_water_mark / 2) {
      this.full = false;
      this.sink?.onDrain?.();
    }
    return true;
  }

  /**
   * A downstream request (stream or long-poll) takes over from any earlier one:
   * one downstream per session. What it re-sends (messages already written to
   * an earlier downstream and still unacknowledged) counts against
   * `max_buffer` until the client acknowledges progress; past it the request
   * is refused (`false`) — a client that asks again and again without reading
   * cannot make the gateway send its buffer again and again.
   */
  attachDownstream(res: ServerResponse, mode: DownstreamMode): boolean {
    this.touch();
    const resend = this.resendBytes();
    if (this.resent + resend > this.settings.max_buffer) return false;
    this.resent += resend;
    this.releaseDownstream();
    // Frames not yet written to the old response are unacknowledged, so the new one starts with them.
    this.pendingWrite = [];
    const down: Downstream = { mode, res, bytes: 0 };
    this.down = down;
    res.on('close', () => {
      if (this.down === down) this.detachDownstream();
    });
    if (mode === 'stream') {
      // (X-Accel-Buffering: no asks nginx-style proxies not to buffer; the client still detects it if one does)
      res.writeHead(200, this.streamHeaders);
      res.flushHeaders();
      // The unacknowledged frames themselves are written (no copy of the buffer per request).
      this.writeStream([encodeNumber(FrameType.SEQ, this.ackedOut + 1), ...this.unackedFrames()]);
      // (that write may have ended the stream already: rotated, or a drain's CLOSE delivered)
      if (this.down !== down) return true;
      this.heartbeatTimer = setInterval(() => {
        if (this.down === down) this.writeStream([encodeEmpty(FrameType.HEARTBEAT)]);
      }, this.settings.heartbeat);
      this.heartbeatTimer.unref?.();
    } else if (this.out.length > 0) {
      this.answerPoll();
    } else {
      down.timer = setTimeout(() => { if (this.down === down) this.answerPoll(); }, this.settings.poll_timeout);
      down.timer.unref?.();
    }
    return true;
  }

  /** Bytes of unacknowledged frames an earlier downstream already carried (a new one would send them again). */
  private resendBytes(): number {
    let bytes = 0;
    for (const e of this.out) {
      if (e.seq > this.writtenThrough) break;
      bytes += e.frame.length;
    }
    return bytes;
  }

  /**
   * An upstream batch. Frames already delivered (by number) are skipped; a gap
   * is refused. `reply` is called once the batch has been handed to the service
   * — later while the session is paused, which is how backpressure reaches a
   * fallback client (it sends one batch at a time).
   */
  receive(frames: Frame[], reply: () => void): 'ok' | 'gap' | 'overflow' {
    this.touch();
    let seq = 0;
    let accepted = this.lastIn;
    const items: InItem[] = [];
    let bytes = 0;
    let carriesMessages = false;
    for (const f of frames) {
      if (f.type === FrameType.SEQ) {
        if (f.value > accepted + 1 || f.value === 0) return 'gap';
        seq = f.value;
      } else if (f.type === FrameType.ACK) {
        if (!this.acknowledge(f.value)) return 'gap';
      } else if (f.type === FrameType.PING) {
        this.pong(f.value);
      } else if (f.type === FrameType.TEXT || f.type === FrameType.BINARY || f.type === FrameType.CLOSE) {
        if (seq === 0) return 'gap';
        carriesMessages = true;
        const n = seq++;
        if (n <= accepted) continue; // already delivered: a retried batch
        accepted = n;
        if (f.type === FrameType.CLOSE) items.push({ kind: 'close', code: f.code, reason: f.reason });
        else { items.push({ kind: 'message', data: f.payload, isBinary: f.type === FrameType.BINARY }); bytes += f.payload.length; }
      }
    }
    if (this.inboundBytes + bytes > this.settings.max_buffer + this.settings.max_body) return 'overflow';
    this.lastIn = accepted;
    // An acknowledgement, or a batch whose messages have all been handed to the service: answer now, even
    // while paused, so a client's acknowledgements never wait behind its own held batch. A re-sent batch
    // whose messages are still held (paused) is answered after them, as its first attempt is: answered
    // now, its acknowledgement would let the client send more past the backpressure.
    if (items.length === 0 && !(carriesMessages && this.pendingUps > 0)) {
      reply();
      return 'ok';
    }
    this.inboundBytes += bytes;
    this.pendingUps++;
    for (const item of items) this.inbound.push(item);
    this.inbound.push({ kind: 'reply', reply });
    this.deliver();
    return 'ok';
  }

  /**
   * Answer a client's probe on the stream attached now, at once (before the
   * reply to the request that carried it): the client compares when each
   * arrives, and a stream that trails the replies is held back by an
   * intermediary (HAProxy corks unfinished responses for 200 ms). Without a
   * stream the probe is unanswered; the client tries again.
   */
  private pong(token: number): void {
    if (this.down?.mode === 'stream') this.writeStream([encodeNumber(FrameType.PONG, token)]);
  }

  /** The client's request ended (any kind): the session is not idle. */
  touch(): void { this.lastActive = monoClock(); }

  // ---- internals -----------------------------------------------------------------

  private enqueueOut(frame: Buffer, isClose = false): void {
    const entry: OutEntry = { seq: this.nextOutSeq++, frame };
    this.out.push(entry);
    this.outBytes += frame.length - FRAME_HEADER_BYTES;
    if (!isClose && this.outBytes > this.settings.max_buffer) {
      // A sender that ignores `send() === false`: bounded memory wins (catalogue §3, outbound buffer).
      this.close(1008, 'fallback buffer limit exceeded');
      return;
    }
    const down = this.down;
    if (!down) return;
    // Frames of one tick go out in one write (one chunk, one syscall), not one each.
    if (down.mode === 'stream') this.pendingWrite.push(frame);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
  }

  private unackedFrames(): Buffer[] {
    return this.out.map((e) => e.frame);
  }

  /** Frames written in one batch (corked: one syscall), each buffer as it is, never copied into one. */
  private writeStream(frames: Buffer[]): void {
    const down = this.down;
    if (!down || down.mode !== 'stream') return;
    if (down.res.destroyed || down.res.writableEnded) { this.detachDownstream(); return; } // unacknowledged: resent on the next stream
    const res = down.res;
    res.cork();
    for (const f of frames) {
      down.bytes += f.length;
      res.write(f);
    }
    res.uncork();
    this.noteWritten();
    if (this.closeDeliveredOn(res)) { this.detachDownstream(); return; }
    if (down.bytes >= this.settings.response_limit) {
      // Rotate: the client re-requests at once with its acknowledgement, freeing our buffer.
      down.res.end(encodeEmpty(FrameType.END));
      this.detachDownstream();
    }
  }

  private answerPoll(): void {
    const down = this.down;
    if (!down || down.mode !== 'poll') return;
    this.detachDownstream();
    this.writePollAnswer(down.res);
  }

  /** A complete poll answer: SEQ and the unacknowledged frames, up to the response limit, each written as it is. */
  private writePollAnswer(res: ServerResponse): void {
    const parts: Buffer[] = [encodeNumber(FrameType.SEQ, this.ackedOut + 1)];
    let bytes = parts[0].length;
    for (const e of this.out) {
      // At least one message, then stop at the response limit; the rest goes in the next poll.
      if (parts.length > 1 && bytes + e.frame.length > this.settings.response_limit) break;
      parts.push(e.frame);
      bytes += e.frame.length;
      if (e.seq > this.writtenThrough) this.writtenThrough = e.seq;
    }
    if (parts.length === 1) { parts.push(encodeEmpty(FrameType.HEARTBEAT)); bytes += parts[1].length; }
    const headers = this.pollHeaders;
    headers[headers.length - 1] = String(bytes);
    res.writeHead(200, headers);
    res.cork();
    for (let i = 0; i < parts.length - 1; i++) res.write(parts[i]);
    res.uncork();
    res.end(parts[parts.length - 1]);
    this.closeDeliveredOn(res);
  }

  /**
   * While the gateway drains, the CLOSE written on `res` ends the session once
   * the response is done (ended here if it is a stream): the client has it,
   * and could not bring its acknowledgement. True when it is so.
   */
  private closeDeliveredOn(res: ServerResponse): boolean {
    if (this.state !== 'closing' || this.writtenThrough < this.closeSeq || !this.opts.draining?.()) return false;
    const close = this.localClose!;
    res.once('close', () => this.finish({ ...close, wasClean: false, initiator: 'local' }));
    if (!res.writableEnded) res.end(encodeEmpty(FrameType.END));
    return true;
  }

  /** Everything queued now has been written to a downstream. */
  private noteWritten(): void {
    if (this.out.length > 0) this.writtenThrough = this.out[this.out.length - 1].seq;
  }

  /** End the current downstream response (a newer request takes over, or the session ends). */
  private releaseDownstream(): void {
    const down = this.down;
    if (!down) return;
    if (down.mode === 'stream') {
      this.detachDownstream();
      // Still holding bytes the client has not read: they would stay in memory for nothing (the new
      // downstream carries them), so the old response is dropped rather than ended.
      if (down.res.writableLength > 0) down.res.destroy();
      else if (!down.res.writableEnded) down.res.end(encodeEmpty(FrameType.END));
    } else {
      this.answerPoll();
    }
  }

  private detachDownstream(): void {
    const down = this.down;
    if (!down) return;
    if (down.timer) clearTimeout(down.timer);
    if (this.heartbeatTimer) { clearInterval(this.heartbeatTimer); this.heartbeatTimer = undefined; }
    this.down = undefined;
    this.touch();
  }

  private deliver(): void {
    if (this.delivering || !this.sink) return;
    this.delivering = true;
    try {
      while (this.inbound.length > 0 && !this.paused && this.state !== 'closed') {
        const item = this.inbound.shift()!;
        if (item.kind === 'reply') { this.pendingUps--; this.touch(); item.reply(); continue; }
        if (item.kind === 'close') { this.remoteClose(item.code, item.reason); continue; }
        this.inboundBytes -= item.data.length;
        const sink = this.sink;
        if (sink.streaming && sink.onFragment) sink.onFragment(item.data, item.isBinary, true, true, item.data.length);
        else sink.onMessage?.(item.data, item.isBinary);
      }
    } finally {
      this.delivering = false;
    }
  }

  private remoteClose(code: number, reason: string): void {
    this.remoteCloseCode = code;
    // The client's close is acknowledged in the reply to its batch (endpoints add a CLOSE frame).
    const initiator = this.state === 'closing' ? 'local' : 'remote';
    this.finish({ code, reason, wasClean: true, initiator });
  }

  private armIdle(ms: number): void {
    this.idleTimer = setTimeout(() => this.idleCheck(), ms);
    this.idleTimer.unref?.();
  }

  /** The idle timer fired: end the session if no request came for `session_timeout`, else wait out the rest. */
  private idleCheck(): void {
    if (this.state === 'closed') return;
    const timeout = this.settings.session_timeout;
    // A request attached or in progress keeps the session alive (its end is noted then).
    if (this.down || this.pendingUps > 0) this.lastActive = monoClock();
    const left = this.lastActive + timeout - monoClock();
    if (left > 0) { this.armIdle(left); return; }
    this.finish({ code: 1006, reason: 'fallback session timed out', wasClean: false, initiator: 'transport' });
  }

  private finish(info: CloseInfo): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.closeTimer) clearTimeout(this.closeTimer);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    const down = this.down;
    if (down) {
      this.detachDownstream();
      if (down.mode === 'stream') { if (!down.res.writableEnded) down.res.end(encodeEmpty(FrameType.END)); }
      else if (!down.res.headersSent) this.writePollAnswer(down.res);
    }
    // Replies still waiting (paused session) are answered so no request hangs.
    for (const item of this.inbound) if (item.kind === 'reply') item.reply();
    this.inbound.length = 0;
    this.inboundBytes = 0;
    this.out.length = 0;
    this.outBytes = 0;
    this.admission.release();
    this.closedInfo = info;
    this.opts.onEnd(this, info);
    this.sink?.onClose?.(info);
    for (const fn of this.closeWatchers.splice(0)) {
      try { fn(info); } catch { /* one watcher must not break the others */ }
    }
  }

  /** After the client's CLOSE was handled: the frame that answers it (its code echoed, as in WebSocket). */
  closeEcho(): Buffer | undefined {
    return this.remoteCloseCode === undefined ? undefined : encodeClose(this.remoteCloseCode, '');
  }
}

/** A close reason fits 123 bytes of UTF-8 (as in a WebSocket Close frame); cut on a character boundary. */
export function truncateReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  let out = '';
  for (const ch of reason) {
    if (Buffer.byteLength(out + ch) > 123) break;
    out += ch;
  }
  return out;
}
