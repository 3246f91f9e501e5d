/**
 * Runs one conformance case over a raw TCP connection and judges it the way
 * Autobahn's fuzzing client does: the events received must equal one of the
 * expected lists (OK, else NON-STRICT), and the close must be done by the
 * right endpoint, cleanly where required, with an allowed code, with the
 * server closing TCP — else FAILED / UNCLEAN / WRONG CODE / FAILED BY CLIENT.
 *
 * Differences from wstest, all in the direction of "stricter" or "faster":
 * - a passing server never waits for a timer: the client moves on as soon as
 *   the expected events are complete (waits are "at most");
 * - echoed payloads of category 9 are compared byte for byte (wstest only
 *   compares lengths);
 * - any protocol violation by the server (masked frame, RSV bits, bad close
 *   code, invalid UTF-8 in a text message or close reason, …) fails the case
 *   with the violation named.
 */
import type { Socket } from 'node:net';
import {
  PASSING, isValidUtf8,
  type ConformanceCase, type Event, type Step, type Verdict,
} from './cases.js';
import { ClientDeflate, FrameReader, encodeFrame, encodeFrameHeader, maskBytes, openRaw, type InFrame } from './wire.js';

export interface Target { host: string; port: number; path: string }

export interface RunOptions {
  /** Upper bound for a case's failure-path timers (Autobahn allows up to 1000 s in category 9). */
  maxAfterMs?: number;
  /**
   * Lower bound for them (Autobahn gives the 6.5–6.23 cases 0.5 s). A passing
   * server never meets these timers, so raising them only keeps a loaded CI
   * machine from turning a slow echo into a failure.
   */
  minAfterMs?: number;
  /** Wait for the server's Close after ours (Autobahn: closeHandshakeTimeout 1 s). */
  closeHandshakeTimeoutMs?: number;
  /** Wait for the server to close TCP after the close handshake (Autobahn: serverConnectionDropTimeout 1 s). */
  serverDropTimeoutMs?: number;
}

export interface CaseResult {
  id: string;
  /** The case's overall verdict: behaviour, unless that passed and the close behaviour did not. */
  verdict: Verdict;
  behavior: Verdict;
  behaviorClose: Verdict;
  result: string;
  resultClose: string;
  received: string[];
  remoteCloseCode?: number;
  remoteCloseReason?: string;
  closedByMe: boolean;
  droppedByMe: boolean;
  wasClean: boolean;
  durationMs: number;
  /** What went over the wire, in order, summarised (for reports of failures). */
  wirelog: string[];
}

export const isPassing = (v: Verdict): boolean => PASSING.includes(v);

const VALID_CLOSE_CODES = new Set([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]);
const isValidCloseCode = (code: number): boolean => VALID_CLOSE_CODES.has(code) || (code >= 3000 && code <= 4999);

const WIRELOG_HEAD = 40;
const WIRELOG_TAIL = 40;

export async function runCase(c: ConformanceCase, target: Target, opts: RunOptions = {}): Promise<CaseResult> {
  const started = performance.now();
  const failed = (verdict: Verdict, result: string, resultClose: string): CaseResult => ({
    id: c.id, verdict, behavior: verdict, behaviorClose: verdict, result, resultClose,
    received: [], closedByMe: false, droppedByMe: false, wasClean: false,
    durationMs: Math.round(performance.now() - started), wirelog: [],
  });
  let conn;
  try {
    conn = await openRaw(target.host, target.port, target.path, c.deflate ? { headers: { 'Sec-WebSocket-Extensions': c.deflate.offer } } : {});
  } catch (err) {
    return failed('FAILED', 'The WebSocket opening handshake was never completed!', (err as Error).message);
  }
  let deflate: ClientDeflate | undefined;
  const response = conn.headers['sec-websocket-extensions'];
  if (c.deflate) {
    // wstest: a server that declines compression makes these cases UNIMPLEMENTED.
    if (response === undefined) {
      conn.socket.destroy();
      return failed('UNIMPLEMENTED', 'The server declined permessage-deflate.', '');
    }
    try {
      deflate = new ClientDeflate(response, { clientMaxWindowBits: c.deflate.offer.includes('client_max_window_bits') });
    } catch (err) {
      conn.socket.destroy();
      return failed('FAILED', `Invalid permessage-deflate response: ${(err as Error).message}`, '');
    }
  } else if (response !== undefined) {
    conn.socket.destroy();
    return failed('FAILED', `The server accepted an extension that was not offered: ${response}`, '');
  }
  return new CaseRun(c, conn.socket, opts, started, deflate).run(conn.leftover);
}

type State = 'OPEN' | 'CLOSING' | 'CLOSED';

class CaseRun {
  private state: State = 'OPEN';
  private closedByMe = false;
  private droppedByMe = false;
  private wasClean = false;
  private serverCloseSeen = false;
  private remoteCloseCode?: number;
  private remoteCloseReason?: string;
  private violation?: string;
  private readonly received: Event[] = [];
  private readonly wirelog: string[] = [];
  private readonly logTail: string[] = [];
  private logDropped = 0;
  private readonly reader = new FrameReader();
  private pending: Buffer[] = [];
  private message?: { opcode: number; chunks: Buffer[]; length: number; compressed: boolean };
  private readonly txFrames = new Map<number, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private wake?: () => void;
  private done!: (r: CaseResult) => void;
  /** Category 9: the behaviour is decided when the big message (or the last round trip) arrives. */
  private customBehavior?: { behavior: Verdict; result: string };
  private roundTripsSent = 0;
  private closeHandshakeTimer?: NodeJS.Timeout;

  constructor(
    private readonly c: ConformanceCase,
    private readonly socket: Socket,
    private readonly opts: RunOptions,
    private readonly started: number,
    /** Categories 12/13: the agreed permessage-deflate, when the server accepted it. */
    private readonly deflate?: ClientDeflate,
  ) {}

  run(leftover: Buffer): Promise<CaseResult> {
    const result = new Promise<CaseResult>((resolve) => { this.done = resolve; });
    this.socket.on('data', (d: Buffer) => this.onData(d));
    this.socket.on('end', () => this.log('rx TCP FIN (server closed TCP)'));
    this.socket.on('error', (err) => this.log(`socket error: ${err.message}`));
    this.socket.on('close', () => this.onConnectionLost());
    if (this.c.echo || this.c.roundTrips) {
      this.customBehavior = { behavior: 'FAILED', result: `Did not receive the echo within ${this.afterMs() / 1000} s.` };
    }
    if (leftover.length > 0) this.onData(leftover);
    void this.script();
    return result;
  }

  // ------------------------------------------------------------ sending

  private afterMs(): number {
    return Math.min(Math.max(this.c.after.ms, this.opts.minAfterMs ?? 0), this.opts.maxAfterMs ?? Infinity);
  }

  private async script(): Promise<void> {
    try {
      if (this.c.roundTrips) this.sendRoundTrip();
      let frameMask: { mask: Buffer; offset: number } | undefined;
      for (const step of this.c.steps()) {
        // A server Close (or a gone socket) ends the script: a conforming client sends nothing after replying.
        if (this.serverCloseSeen || this.state === 'CLOSED') return;
        switch (step.op) {
          case 'frame':
            await this.sendFrame(step.opcode, step.payload ?? Buffer.alloc(0), step.fin ?? true, step.rsv ?? 0, step.chop, step.sync);
            break;
          case 'message': {
            const frames = fragment(step);
            this.log(`tx message ${step.binary ? 'binary' : 'text'} ${describeBytes(step.payload)}${frames.length > 1 ? ` in ${frames.length} frames of ${step.fragmentSize} bytes` : ''}`);
            for (const f of frames) await this.sendFrame(f.opcode, f.payload, f.fin, 0, undefined, undefined, frames.length > 1);
            break;
          }
          case 'beginFrame': {
            const { header, mask } = encodeFrameHeader(step.opcode, step.length, false);
            this.countTx(step.opcode);
            this.log(`tx frame op=${step.opcode} fin=0 len=${step.length} (header only; payload follows in pieces)`);
            this.pending.push(header);
            frameMask = { mask, offset: 0 };
            break;
          }
          case 'frameData': {
            if (!frameMask) throw new Error('frameData without beginFrame');
            this.pending.push(maskBytes(step.data, frameMask.mask, frameMask.offset));
            frameMask.offset += step.data.length;
            this.log(`tx frame data ${describeBytes(step.data)}`);
            break;
          }
          case 'close':
            this.sendClose(step.payload);
            break;
          case 'wait': {
            await this.flush(true);
            await this.waitFor(step);
            if (this.state !== 'OPEN') return;
            if (step.tag) {
              this.received.push({ type: 'timeout', tag: step.tag });
              this.log(`timeout ${step.tag}: still open after ${step.ms} ms`);
            }
            break;
          }
        }
      }
      await this.flush(false);
    } finally {
      this.scheduleAfter();
    }
  }

  private async sendFrame(opcode: number, payload: Buffer, fin: boolean, rsv: number, chop?: number, sync?: boolean, quiet = false): Promise<void> {
    const bytes = encodeFrame({ opcode, payload, fin, rsv });
    this.countTx(opcode);
    if (!quiet) this.log(`tx frame op=${opcode} fin=${fin ? 1 : 0}${rsv ? ` rsv=${rsv}` : ''} ${describeBytes(payload)}${chop ? ` in ${chop}-octet chops` : ''}${sync ? ' (own write)' : ''}`);
    if (chop) {
      await this.flush(true);
      for (let i = 0; i < bytes.length; i += chop) {
        if (this.socket.destroyed) return;
        this.pending.push(bytes.subarray(i, i + chop));
        await this.flush(true);
      }
    } else if (sync) {
      await this.flush(true);
      this.pending.push(bytes);
      await this.flush(true);
    } else {
      this.pending.push(bytes);
    }
  }

  /** Write what is queued; with `gap`, wait until it left and the event loop turned, so the next write is a separate segment. */
  private flush(gap: boolean): Promise<void> {
    if (this.pending.length === 0 || this.socket.destroyed || this.socket.writableEnded) {
      this.pending = [];
      return Promise.resolve();
    }
    const data = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
    this.pending = [];
    if (!gap) { this.socket.write(data); return Promise.resolve(); }
    return new Promise((resolve) => {
      // A server that fails the connection mid-write must not leave the script hanging.
      const onClose = (): void => resolve();
      this.socket.once('close', onClose);
      this.socket.write(data, () => {
        this.socket.off('close', onClose);
        setImmediate(resolve);
      });
    });
  }

  private write(data: Buffer): void {
    this.pending.push(data);
    void this.flush(false);
  }

  private countTx(opcode: number): void {
    this.txFrames.set(opcode, (this.txFrames.get(opcode) ?? 0) + 1);
  }

  /** Start (or reply to) the closing handshake. */
  private sendClose(payload: Buffer): void {
    if (this.state !== 'OPEN') return;
    this.log(`tx close ${describeClose(payload)}`);
    this.pending.push(encodeFrame({ opcode: 8, payload }));
    void this.flush(false);
    this.state = 'CLOSING';
    this.closedByMe = true;
    this.closeHandshakeTimer = this.timer(this.opts.closeHandshakeTimeoutMs ?? 1000, () => {
      if (this.state === 'CLOSED') return;
      this.log('no Close from the server in time: client drops TCP');
      this.wasClean = false;
      this.drop();
    });
  }

  private sendRoundTrip(): void {
    const rt = this.c.roundTrips!;
    const plain = this.roundTripPayload(this.roundTripsSent++);
    const opcode = rt.binary ? 2 : 1;
    // Compressed: the whole message, then cut into frames (wstest's autoFragmentSize), RSV1 on the first.
    const payload = this.deflate ? this.deflate.compress(plain) : plain;
    const size = rt.fragmentSize ?? 0;
    if (size === 0 || payload.length <= size) {
      this.write(encodeFrame({ opcode, payload, rsv: this.deflate ? 4 : 0 }));
      return;
    }
    const frames: Buffer[] = [];
    for (let i = 0; i < payload.length; i += size) {
      const first = i === 0;
      frames.push(encodeFrame({
        opcode: first ? opcode : 0, payload: payload.subarray(i, i + size), fin: i + size >= payload.length, rsv: first && this.deflate ? 4 : 0,
      }));
    }
    this.write(Buffer.concat(frames));
  }

  /** The i-th round-trip message (0-based). */
  private roundTripPayload(i: number): Buffer {
    const rt = this.c.roundTrips!;
    return rt.payload ? rt.payload(i) : Buffer.alloc(rt.length, rt.binary ? 0xfe : 0x2a);
  }

  private waitFor(step: Extract<Step, { op: 'wait' }>): Promise<void> {
    return new Promise((resolve) => {
      if (this.isClosed()) { resolve(); return; }
      const t = this.timer(step.ms, () => { this.wake = undefined; resolve(); });
      this.wake = () => {
        const pongSeen = step.until === 'pong' && this.received.some((e) => e.type === 'pong');
        if (this.state !== 'OPEN' || pongSeen) {
          clearTimeout(t);
          this.wake = undefined;
          resolve();
        }
      };
    });
  }

  private scheduleAfter(): void {
    if (this.isClosed()) return; // the case already ended; no timer may outlive it
    const ms = this.afterMs();
    this.timer(ms, () => {
      if (this.state === 'CLOSED') return;
      if (this.c.after.action === 'kill') {
        this.log(`case timer (${ms} ms) fired: client fails the connection (drops TCP)`);
        this.drop();
      } else {
        this.log(`case timer (${ms} ms) fired: client starts the closing handshake`);
        this.sendClose(closeCode(1000));
      }
    });
  }

  /** A method, not a field test, because TypeScript's narrowing cannot see state changed by calls. */
  private isClosed(): boolean {
    return this.state === 'CLOSED';
  }

  private drop(): void {
    if (this.state === 'CLOSED') return;
    this.droppedByMe = true;
    this.state = 'CLOSED';
    this.socket.destroy();
  }

  private timer(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => { this.timers.delete(t); fn(); }, ms);
    this.timers.add(t);
    return t;
  }

  // ------------------------------------------------------------ receiving

  private onData(data: Buffer): void {
    if (this.state === 'CLOSED') return;
    let frames: InFrame[];
    try {
      frames = this.reader.push(data);
    } catch (err) {
      return this.protocolViolation((err as Error).message);
    }
    for (const f of frames) {
      if (this.isClosed()) return; // a frame before this one made the client fail the connection
      this.onFrame(f);
    }
    this.wake?.();
  }

  private onFrame(f: InFrame): void {
    this.log(`rx frame op=${f.opcode} fin=${f.fin ? 1 : 0}${f.rsv ? ` rsv=${f.rsv}` : ''}${f.masked ? ' MASKED' : ''} ${describeBytes(f.payload)}`);
    if (this.serverCloseSeen) return this.protocolViolation(`server sent a frame (opcode ${f.opcode}) after its Close`);
    if (f.masked) return this.protocolViolation('server sent a masked frame');
    // RFC 7692 §6: with permessage-deflate, RSV1 only, on the first frame of a data message.
    const compressedStart = this.deflate !== undefined && f.rsv === 4 && (f.opcode === 1 || f.opcode === 2);
    if (f.rsv && !compressedStart) return this.protocolViolation(`server sent RSV bits ${f.rsv}${this.deflate ? ' on a frame that may not carry them' : ' without an extension'}`);
    if (f.opcode >= 8) {
      if (!f.fin) return this.protocolViolation('server sent a fragmented control frame');
      if (f.payload.length > 125) return this.protocolViolation('server sent a control frame over 125 bytes');
    }
    switch (f.opcode) {
      case 0: case 1: case 2: return this.onDataFrame(f);
      case 8: return this.onCloseFrame(f.payload);
      case 9:
        this.received.push({ type: 'ping', payload: f.payload });
        if (this.state === 'OPEN') this.write(encodeFrame({ opcode: 10, payload: f.payload }));
        return this.finishWhenDone();
      case 10:
        this.received.push({ type: 'pong', payload: f.payload });
        return this.finishWhenDone();
      default:
        return this.protocolViolation(`server sent reserved opcode ${f.opcode}`);
    }
  }

  private onDataFrame(f: InFrame): void {
    if (f.opcode === 0 && !this.message) return this.protocolViolation('server sent a continuation frame with no message to continue');
    if (f.opcode !== 0 && this.message) return this.protocolViolation('server started a new message inside a fragmented one');
    const m = this.message ?? { opcode: f.opcode, chunks: [], length: 0, compressed: f.rsv === 4 };
    m.chunks.push(f.payload);
    m.length += f.payload.length;
    if (!f.fin) { this.message = m; return; }
    this.message = undefined;
    let payload = m.chunks.length === 1 ? m.chunks[0] : Buffer.concat(m.chunks, m.length);
    if (m.compressed) {
      try {
        payload = (this.deflate as ClientDeflate).inflate(payload);
      } catch (err) {
        return this.protocolViolation(`server sent a compressed message that does not inflate: ${(err as Error).message}`);
      }
    }
    const binary = m.opcode === 2;
    if (!binary && !isValidUtf8(payload)) return this.protocolViolation('server sent a text message that is not valid UTF-8');
    this.onMessage(payload, binary);
  }

  private onMessage(payload: Buffer, binary: boolean): void {
    if (this.state === 'CLOSED') return;
    if (this.c.echo) {
      const { length, pattern } = this.c.echo;
      const kind = (b: boolean): string => (b ? 'binary' : 'text');
      if (binary !== this.c.echo.binary) this.customBehavior = { behavior: 'FAILED', result: `Expected a ${kind(this.c.echo.binary)} message, got ${kind(binary)}.` };
      else if (payload.length !== length) this.customBehavior = { behavior: 'FAILED', result: `Expected a message of ${length} bytes, got ${payload.length}.` };
      else if (!matchesPattern(payload, pattern)) this.customBehavior = { behavior: 'FAILED', result: `Echoed ${length} bytes differ from those sent.` };
      else this.customBehavior = { behavior: 'OK', result: `Received ${kind(binary)} message of length ${length}.` };
      this.sendClose(closeCode(1000));
      return;
    }
    if (this.c.roundTrips) {
      const rt = this.c.roundTrips;
      const expected = this.roundTripPayload(this.roundTripsSent - 1);
      if (binary !== rt.binary || !payload.equals(expected)) {
        this.customBehavior = { behavior: 'FAILED', result: `Echo ${this.roundTripsSent} differs from what was sent (binary=${binary}, ${payload.length} bytes).` };
        this.sendClose(closeCode(1000));
      } else if (this.roundTripsSent < rt.count) {
        this.sendRoundTrip();
      } else {
        this.customBehavior = { behavior: 'OK', result: `Received all ${rt.count} echoed messages in time.` };
        this.sendClose(closeCode(1000));
      }
      return;
    }
    this.received.push({ type: 'message', payload, binary });
    this.finishWhenDone();
  }

  private onCloseFrame(payload: Buffer): void {
    this.serverCloseSeen = true;
    if (payload.length === 1) return this.protocolViolation('server sent a Close with a 1-byte payload');
    if (payload.length >= 2) {
      const code = payload.readUInt16BE(0);
      this.remoteCloseCode = code;
      if (!isValidCloseCode(code)) return this.protocolViolation(`server sent invalid close code ${code}`);
      const reason = payload.subarray(2);
      if (!isValidUtf8(reason)) return this.protocolViolation('server sent a close reason that is not valid UTF-8');
      this.remoteCloseReason = reason.toString('utf8');
    }
    this.log(`rx close ${describeClose(payload)}`);
    if (this.state === 'OPEN') {
      // The server started the closing handshake: reply with its code, then expect it to close TCP.
      this.wasClean = true;
      this.log(`tx close ${describeClose(payload.subarray(0, 2))} (reply)`);
      this.pending.push(encodeFrame({ opcode: 8, payload: payload.subarray(0, 2) }));
      void this.flush(false);
      this.state = 'CLOSING';
    } else if (this.state === 'CLOSING') {
      this.wasClean = true;
      if (this.closeHandshakeTimer) clearTimeout(this.closeHandshakeTimer);
    }
    this.timer(this.opts.serverDropTimeoutMs ?? 1000, () => {
      if (this.state === 'CLOSED') return;
      this.log('server did not close TCP in time after the close handshake: client drops TCP');
      this.wasClean = false;
      this.drop();
    });
  }

  private protocolViolation(what: string): void {
    this.log(`client fails the connection: ${what}`);
    this.violation ??= what;
    this.wasClean = false;
    this.drop();
  }

  /** Autobahn's finishWhenDone: once the events equal every expected list, the client closes (when it is meant to). */
  private finishWhenDone(): void {
    const lists = Object.values(this.c.expected ?? {});
    const done = lists.length > 0 && (lists.every((l) => sameEvents(this.received, l))
      || (this.c.pongsMayCoalesce === true && coalescedPongs(this.received, this.c.expected?.OK ?? [])));
    if (!done) return;
    if (this.c.close.closedByMe && !this.c.suppressClose) this.sendClose(closeCode(this.c.close.codes[0]));
  }

  // ------------------------------------------------------------ judging

  private onConnectionLost(): void {
    this.state = 'CLOSED';
    this.deflate?.close();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.wake?.();
    const c = this.c;
    let behavior: Verdict = 'FAILED';
    let result = 'Actual events differ from any expected.';
    if (this.customBehavior) {
      ({ behavior, result } = this.customBehavior);
    } else {
      for (const key of ['OK', 'NON-STRICT'] as const) {
        const list = c.expected?.[key];
        if (list && sameEvents(this.received, list)) {
          behavior = key;
          result = 'Actual events match at least one expected.';
          break;
        }
      }
      if (behavior === 'FAILED' && c.pongsMayCoalesce && coalescedPongs(this.received, c.expected?.OK ?? [])) {
        behavior = 'NON-STRICT';
        result = 'Pongs answer the most recent ping of each read (RFC 6455 §5.5.3), the last one included.';
      }
    }

    let behaviorClose: Verdict;
    let resultClose: string;
    if (c.close.closedByMe !== this.closedByMe) {
      behaviorClose = 'FAILED';
      resultClose = 'The connection was failed by the wrong endpoint';
    } else if (c.close.requireClean && !this.wasClean) {
      behaviorClose = 'UNCLEAN';
      resultClose = 'The spec requires the connection to be failed cleanly here';
    } else if (this.remoteCloseCode !== undefined && !c.close.codes.includes(this.remoteCloseCode)) {
      behaviorClose = 'WRONG CODE';
      resultClose = `The close code should have been ${c.close.codes.join(',')} or empty`;
    } else if (this.droppedByMe) {
      behaviorClose = 'FAILED BY CLIENT';
      resultClose = 'It is preferred that the server close the TCP connection';
    } else {
      behaviorClose = 'OK';
      resultClose = 'Connection was properly closed';
    }
    if (c.close.wrongEndpointIsFatal && c.close.closedByMe !== this.closedByMe) {
      behavior = 'FAILED';
      result = 'The server did not fail the connection itself: it did not detect the invalid payload';
    }
    if (c.wrongCodeFails && behaviorClose === 'WRONG CODE') {
      behavior = 'FAILED';
      result = resultClose;
    }
    if (c.txFrames) {
      const text = this.txFrames.get(1) ?? 0;
      const continuation = this.txFrames.get(0) ?? 0;
      if (text !== c.txFrames.text || continuation !== c.txFrames.continuation) {
        behavior = 'FAILED';
        result = `Frames transmitted text=${text} continuation=${continuation}, expected ${c.txFrames.text}/${c.txFrames.continuation}.`;
      }
    }
    if (this.violation) {
      behavior = 'FAILED';
      result = `Server violated the protocol: ${this.violation}`;
    }
    if (c.informational) {
      result = `${behavior === 'OK' || behavior === 'NON-STRICT' ? `${behavior}: ` : ''}Actual events are undefined by the spec. (${result})`;
      behavior = 'INFORMATIONAL';
      behaviorClose = 'INFORMATIONAL';
    }
    const closeFine = behaviorClose === 'OK' || behaviorClose === 'INFORMATIONAL';
    const verdict: Verdict = !isPassing(behavior) ? behavior : closeFine ? behavior : behaviorClose;
    this.done({
      id: c.id, verdict, behavior, behaviorClose, result, resultClose,
      received: this.received.map(describeEvent),
      remoteCloseCode: this.remoteCloseCode, remoteCloseReason: this.remoteCloseReason,
      closedByMe: this.closedByMe, droppedByMe: this.droppedByMe, wasClean: this.wasClean,
      durationMs: Math.round(performance.now() - this.started),
      wirelog: this.fullWirelog(),
    });
  }

  /** Keeps the first and the last lines: how a case starts and how it ends both matter. */
  private log(line: string): void {
    if (this.wirelog.length < WIRELOG_HEAD) { this.wirelog.push(line); return; }
    this.logTail.push(line);
    if (this.logTail.length > WIRELOG_TAIL) { this.logTail.shift(); this.logDropped++; }
  }

  private fullWirelog(): string[] {
    return [...this.wirelog, ...(this.logDropped ? [`… ${this.logDropped} lines left out …`] : []), ...this.logTail];
  }
}

// ------------------------------------------------------------ helpers

/** Autobahn's sendMessage: one frame, or frames of `fragmentSize` payload bytes. */
function fragment(step: Extract<Step, { op: 'message' }>): Array<{ opcode: number; payload: Buffer; fin: boolean }> {
  const opcode = step.binary ? 2 : 1;
  const size = step.fragmentSize;
  if (!size || step.payload.length <= size) return [{ opcode, payload: step.payload, fin: true }];
  const out: Array<{ opcode: number; payload: Buffer; fin: boolean }> = [];
  for (let i = 0; i < step.payload.length; i += size) {
    out.push({ opcode: i === 0 ? opcode : 0, payload: step.payload.subarray(i, i + size), fin: i + size >= step.payload.length });
  }
  return out;
}

function closeCode(code: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return b;
}

function matchesPattern(payload: Buffer, pattern: Buffer): boolean {
  const n = pattern.length;
  for (let i = 0; i < payload.length; i++) if (payload[i] !== pattern[i % n]) return false;
  return true;
}

/** `got` is an in-order subsequence of the pongs in `all` that ends with the last of them. */
function coalescedPongs(got: Event[], all: Event[]): boolean {
  if (got.length === 0 || all.length === 0) return false;
  let j = 0;
  for (const e of got) {
    while (j < all.length && !sameEvents([e], [all[j]])) j++;
    if (j === all.length || e.type !== 'pong') return false;
    j++;
  }
  return j === all.length;
}

function sameEvents(a: Event[], b: Event[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((e, i) => {
    const f = b[i];
    if (e.type !== f.type) return false;
    if (e.type === 'timeout') return f.type === 'timeout' && e.tag === f.tag;
    if (e.type === 'message') return f.type === 'message' && e.binary === f.binary && e.payload.equals(f.payload);
    return (f.type === 'pong' || f.type === 'ping') && e.payload.equals(f.payload);
  });
}

export function describeBytes(b: Buffer): string {
  if (b.length === 0) return 'len=0';
  if (b.length > 64) return `len=${b.length}`;
  const printable = /^[\x20-\x7e]*$/.test(b.toString('latin1'));
  return `len=${b.length} ${printable ? JSON.stringify(b.toString('latin1')) : `0x${b.toString('hex')}`}`;
}

function describeClose(payload: Buffer): string {
  if (payload.length === 0) return '(no code)';
  if (payload.length === 1) return `(1-byte payload 0x${payload.toString('hex')})`;
  const reason = payload.subarray(2);
  return `code=${payload.readUInt16BE(0)}${reason.length ? ` reason ${describeBytes(reason)}` : ''}`;
}

export function describeEvent(e: Event): string {
  switch (e.type) {
    case 'message': return `message(${e.binary ? 'binary' : 'text'}, ${describeBytes(e.payload)})`;
    case 'pong': return `pong(${describeBytes(e.payload)})`;
    case 'ping': return `ping(${describeBytes(e.payload)})`;
    case 'timeout': return `timeout(${e.tag})`;
  }
}
