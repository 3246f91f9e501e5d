/**
 * A WebSocket connection over an upgraded socket: our RFC 6455 engine behind
 * the Channel interface, in server or client role.
 *
 * Ownership: after construction the connection owns the socket; an 'error'
 * listener is always attached, so socket errors never become uncaught.
 *
 * Timers: none of its own. Every deadline (keepalive, pong, idle, message
 * assembly, close) is a timestamp checked by the shared `heartbeat` tick.
 */
import type { Socket } from 'node:net';
import type { Admission } from '../admitted.js';
import type { Channel, ChannelSink, CloseInfo } from '../channel.js';
import {
  OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_TEXT, CLOSE_NORMAL, CLOSE_GOING_AWAY, CLOSE_NO_STATUS, CLOSE_ABNORMAL,
  CLOSE_POLICY_VIOLATION, CLOSE_INTERNAL_ERROR, isValidCloseCode,
} from './constants.js';
import { FrameParser, type FrameParserHandler, type FrameParserOptions } from './frame-parser.js';
import { deliverRead, FrameWriter } from './frame-writer.js';
import { heartbeat, type HeartbeatMember } from './heartbeat.js';
import { applyMask } from './mask.js';
import { MessageDeflater, MessageInflater, PerMessageDeflate, type DeflateSink, type InflateSink } from './deflate-codec.js';
import type { DeflateOptions } from './permessage-deflate.js';
import { monoClock as clock } from '../clock.js';

export interface ConnectionOptions {
  role: 'server' | 'client';
  protocol?: string;
  extensions?: string;
  admission?: Admission;
  maxMessage: number;
  /** Defaults to maxMessage. */
  maxFrame?: number;
  maxFragments: number;
  /** ms; a message (fragmented, or one frame still arriving) must complete in time → 1008. 0 disables. */
  messageTimeout: number;
  /** ms of silence before a keepalive ping; 0 disables. */
  pingInterval: number;
  /** ms to wait for a pong before dropping; 0 disables. */
  pongTimeout: number;
  /** ms without any frame → close 1001; 0 disables. */
  idleTimeout: number;
  /** ms to wait for the peer's Close (and for TCP to end) after ours. */
  closeTimeout: number;
  /** Outbound bytes above which `send` returns false. */
  highWaterMark: number;
  /**
   * ms a queue above the high-water mark may go without a byte leaving before
   * the connection is dropped (a peer that stopped reading). For backend
   * links: a client's own queue is the channel guard's. 0 or absent: never.
   */
  sendStallTimeout?: number;
  /**
   * We failed the connection for bad input (1002/1007/1008/1009) or a timeout.
   * The connection is passed so that one function can serve every connection
   * (no closure per connection: memory per idle connection counts).
   */
  onViolation?(code: number, reason: string, conn: WebSocketConnection): void;
  /**
   * Runs once when the connection has ended, after the sink's onClose and
   * before the `whenClosed` watchers. Like `onViolation`, meant to be one
   * function shared by all connections made with the same options.
   */
  onClosed?(conn: WebSocketConnection, info: CloseInfo): void;
  /**
   * A sink callback threw while we delivered to it. The connection is closed
   * with 1011 and the error handed here (never rethrown: a bug in one
   * connection's consumer must not take the process down).
   */
  onError?(err: unknown): void;
}

const EMPTY = Buffer.alloc(0);

const kConnection = Symbol('gatehouse.websocket.connection');
type OwnedSocket = Socket & { [kConnection]: WebSocketConnection };

function onSocketError(): void {
  // Nothing to do: 'close' follows and reports 1006. The listener's presence
  // is what matters: a socket error is never an uncaught exception.
}
function onSocketClose(this: Socket): void {
  (this as OwnedSocket)[kConnection].finish();
}
function onSocketEnd(this: Socket): void {
  (this as OwnedSocket)[kConnection].onSocketEnd();
}
function onSocketDrain(this: Socket): void {
  (this as OwnedSocket)[kConnection].onSocketDrain();
}
function onSocketData(this: Socket, chunk: Buffer): void {
  // What the read makes us (or a relay's other side) write leaves when it has been parsed: one write per writer.
  deliverRead(readChunk, (this as OwnedSocket)[kConnection], chunk);
}
function readChunk(conn: WebSocketConnection, chunk: Buffer): void {
  conn.onSocketData(chunk);
}

type CloseWatcher = (info: CloseInfo) => void;

// Bits of WebSocketConnection.flags.
const F_USER_PAUSED = 1;
const F_NEED_DRAIN = 2;
const F_CLOSE_SENT = 4;
const F_FINISHED = 8;
/** A read batch (one socket chunk, or what `resume` releases) is being parsed: its pings get one pong, at the end. */
const F_READING = 16;
/** A compressed piece is with zlib: the parser and the socket wait for it (message order). */
const F_INFLATING = 32;
/** The piece being delivered is compressed payload (`pieceCompressed`). */
const F_DELIVERING_COMPRESSED = 64;

/**
 * Bytes read after our Close was sent before reading stops: enough for a peer
 * to finish what it had in flight and send its own Close, not enough to make
 * us read and discard a flood at line rate until the close timeout.
 */
const CLOSE_READ_BUDGET = 64 * 1024;
/** Header bytes of a control frame (≤ 125 bytes of payload): 2, plus 4 for the mask a client adds. */
const CONTROL_HEADER_MASKED = 6;
const CONTROL_HEADER_PLAIN = 2;

/**
 * The parser keeps its options by reference: one object per connection
 * options object (and per whether permessage-deflate was negotiated), shared.
 */
const parserOptions = new WeakMap<ConnectionOptions, FrameParserOptions>();
const compressedParserOptions = new WeakMap<ConnectionOptions, FrameParserOptions>();
function parserOptionsOf(opts: ConnectionOptions, compressed: boolean): FrameParserOptions {
  const cache = compressed ? compressedParserOptions : parserOptions;
  let p = cache.get(opts);
  if (p === undefined) {
    p = Object.freeze({
      // RFC 6455 §5.1: clients mask, servers do not.
      expectMasked: opts.role === 'server',
      maxFrame: opts.maxFrame ?? opts.maxMessage,
      maxMessage: opts.maxMessage,
      maxFragments: opts.maxFragments,
      allowRsv1: compressed,
    });
    cache.set(opts, p);
  }
  return p;
}

/** A message being assembled for a non-streaming sink: made on the first fragmented message, then reused. */
class Assembly {
  /** One frame arriving in pieces, its length known: the whole buffer. */
  buf: Buffer | null = null;
  pos = 0;
  /** A fragmented message of unknown length: its pieces. */
  parts: Buffer[] | null = null;
  len = 0;
  binary = false;
}

/** What the close needs beyond the two flags on the hot path: made when the connection starts ending. */
class Ending {
  /** The peer's Close arrived; its code (1005 when it had none) and reason. */
  received = false;
  remoteCode: number = CLOSE_ABNORMAL;
  remoteReason = '';
  initiator: CloseInfo['initiator'] | null = null;
  /** When the current close-phase deadline started (our Close sent / TCP end), on `monoClock`. */
  at = 0;
  /** Bytes read since our Close was sent (CLOSE_READ_BUDGET). */
  readAfterClose = 0;
  info: CloseInfo | null = null;
  reported = false;
}

export class WebSocketConnection implements Channel, FrameParserHandler, HeartbeatMember, InflateSink, DeflateSink {
  readonly protocol: string;
  readonly admission?: Admission;

  /** Data messages received (completed). */
  messagesIn = 0;
  /** Data payload bytes received. */
  bytesIn = 0;

  private readonly socket: Socket;
  private readonly writer: FrameWriter;
  private readonly parser: FrameParser;
  private readonly opts: ConnectionOptions;
  private sink: ChannelSink | null = null;
  /**
   * userPaused, needDrain, closeSent and finished, as bits of one small
   * integer (one field instead of four per connection); the private accessors
   * below keep the code reading like plain fields.
   */
  private flags = 0;

  // Rarely used state lives in objects made on first need: an idle connection
  // does not carry it (memory per idle connection is a design target).
  /** Assembly of whole messages for non-streaming sinks. */
  private asm: Assembly | null = null;
  /** Close state beyond the closeSent and finished flags. */
  private ending: Ending | null = null;
  /** permessage-deflate, when negotiated (its zlib halves are made on first use and dropped when idle). */
  private pmd: PerMessageDeflate | null = null;

  // Outbound state.
  private pendingPong: Buffer | null = null;

  /** One watcher, or a list when there are several (most connections have none). */
  private closeWatchers: CloseWatcher | CloseWatcher[] | null = null;

  // Timer bookkeeping (compared on each heartbeat tick); times on `monoClock`
  // (small integers, not a boxed number per field).
  private lastFrames = 0;
  private lastActivity: number;
  private pingSentAt = 0;
  private msgSeq = 0;
  private msgSeenAt = 0;
  /** While a full queue waits to drain (sendStallTimeout): bytes delivered and since when, on `monoClock`. */
  private stall: { delivered: number; since: number } | null = null;

  /**
   * `opts` is kept by reference for the connection's life: share one object
   * between connections with the same settings, and give what differs per
   * connection (subprotocol, admission) in `own`, which is not kept.
   */
  constructor(
    socket: Socket, head: Buffer, opts: ConnectionOptions,
    own?: { protocol?: string; admission?: Admission; deflate?: DeflateOptions | null },
  ) {
    this.socket = socket;
    this.opts = opts;
    this.protocol = own?.protocol ?? opts.protocol ?? '';
    const admission = own?.admission ?? opts.admission;
    if (admission !== undefined) this.admission = admission;
    const deflate = own?.deflate ?? null;
    if (deflate !== null) this.pmd = new PerMessageDeflate(deflate);
    this.writer = new FrameWriter(socket, opts.role === 'client');
    this.parser = new FrameParser(parserOptionsOf(opts, deflate !== null), this);
    this.lastActivity = clock();

    socket.setNoDelay(true);
    // Module-level listeners find the connection through a symbol on the
    // socket: no closures per connection (memory per idle connection counts).
    (socket as OwnedSocket)[kConnection] = this;
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
    socket.on('end', onSocketEnd);
    socket.on('drain', onSocketDrain);
    socket.on('data', onSocketData);

    // Until a sink is attached nothing is delivered: the parser holds what was
    // already read (head) and the socket is not read further.
    this.parser.pause();
    socket.pause();
    if (head.length > 0) this.parser.push(head);

    const shortest = [opts.pingInterval, opts.pongTimeout, opts.idleTimeout, opts.closeTimeout, opts.messageTimeout, opts.sendStallTimeout ?? 0]
      .filter((t) => t > 0)
      .reduce((a, b) => Math.min(a, b), Infinity);
    heartbeat.add(this, Number.isFinite(shortest) ? shortest : 0);
    if (socket.destroyed) this.finish();
  }

  /** @internal socket listener */
  onSocketData(chunk: Buffer): void {
    if (this.closeSent) this.countAfterClose(chunk.length);
    const nested = (this.flags & F_READING) !== 0;
    this.flags |= F_READING;
    try {
      this.parser.push(chunk);
    } catch (err) {
      this.internalError(err);
    }
    if (nested) return;
    this.flags &= ~F_READING;
    if (this.pendingPong !== null) this.answerPing();
  }

  /**
   * After our Close only the peer's Close matters: read a small budget for it,
   * then stop reading (the close timeout drops the connection) rather than
   * read and discard whatever the peer keeps sending.
   */
  private countAfterClose(bytes: number): void {
    const end = this.endState();
    end.readAfterClose += bytes;
    if (end.readAfterClose > CLOSE_READ_BUDGET) this.socket.pause();
  }

  /** The user paused reading (`pause`). */
  private get userPaused(): boolean { return (this.flags & F_USER_PAUSED) !== 0; }
  private set userPaused(on: boolean) { this.flags = on ? this.flags | F_USER_PAUSED : this.flags & ~F_USER_PAUSED; }
  /** `send` returned false: the sink's onDrain is owed. */
  private get needDrain(): boolean { return (this.flags & F_NEED_DRAIN) !== 0; }
  private set needDrain(on: boolean) { this.flags = on ? this.flags | F_NEED_DRAIN : this.flags & ~F_NEED_DRAIN; }
  /** Our Close frame is sent (read on every send). */
  private get closeSent(): boolean { return (this.flags & F_CLOSE_SENT) !== 0; }
  private set closeSent(on: boolean) { this.flags = on ? this.flags | F_CLOSE_SENT : this.flags & ~F_CLOSE_SENT; }
  /** The socket has closed and the end was reported. */
  private get finished(): boolean { return (this.flags & F_FINISHED) !== 0; }
  private set finished(on: boolean) { this.flags = on ? this.flags | F_FINISHED : this.flags & ~F_FINISHED; }
  /** A compressed piece is being inflated: reading waits for it. */
  private get inflating(): boolean { return (this.flags & F_INFLATING) !== 0; }
  private set inflating(on: boolean) { this.flags = on ? this.flags | F_INFLATING : this.flags & ~F_INFLATING; }

  // Constant or per-options values: on the prototype, not in every connection.
  get transport(): 'websocket' {
    return 'websocket';
  }

  get role(): 'server' | 'client' {
    return this.opts.role;
  }

  get extensions(): string {
    return this.pmd?.options.header ?? this.opts.extensions ?? '';
  }

  /** The permessage-deflate agreement of this connection, null when it is not compressed. */
  get deflate(): DeflateOptions | null {
    return this.pmd?.options ?? null;
  }

  /** The close state, made when the connection starts ending. */
  private endState(): Ending {
    return (this.ending ??= new Ending());
  }

  /** A consumer callback threw: close 1011 (RFC 6455 §7.4.1), report, never rethrow. */
  private internalError(err: unknown): void {
    if (!this.closeSent && !this.finished) {
      this.endState().initiator ??= 'local';
      this.sendClose(CLOSE_INTERNAL_ERROR, 'internal error');
      this.endState().at = clock();
      this.endSocket();
    }
    this.opts.onError?.(err);
  }

  get bufferedAmount(): number {
    return this.socket.writableLength + this.writer.pending + (this.pmd?.queuedBytes ?? 0);
  }

  /** Bytes whose write has completed: counted by the socket, nothing per message here. */
  get deliveredBytes(): number {
    // bytesWritten counts every byte given to the socket, writableLength those whose write has not completed.
    return this.socket.bytesWritten - this.socket.writableLength;
  }

  get closed(): boolean {
    return this.finished || this.closeSent;
  }

  attach(sink: ChannelSink): void {
    this.sink = sink;
    if (this.ending?.info) {
      this.reportClose();
      return;
    }
    if (!this.userPaused) {
      try {
        this.startReading();
      } catch (err) {
        this.internalError(err);
      }
    }
  }

  // ---- outbound -----------------------------------------------------------

  send(data: Buffer | string, isBinary: boolean): boolean {
    if (this.closeSent || this.finished) return false;
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (this.pmd !== null) this.deflater().send(buf, isBinary, true, true);
    else this.writer.writeFrame(isBinary ? OP_BINARY : OP_TEXT, buf, true);
    return this.checkBackpressure();
  }

  sendFragment(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): boolean {
    if (this.closeSent || this.finished) return false;
    if (this.pmd !== null) this.deflater().send(data, isBinary, first, fin);
    else this.writer.writeFrame(first ? (isBinary ? OP_BINARY : OP_TEXT) : OP_CONT, data, fin);
    return this.checkBackpressure();
  }

  /**
   * Relay variant of `sendFragment`: `data` is handed over (nobody reads it
   * afterwards) and is masked with `mask`, or plain when null. It is re-masked
   * in place, in one pass, to what this hop needs: no copy of large payloads.
   * `compressed` (a relay passing permessage-deflate frames on): the payload
   * is a compressed message's, sent as it is with RSV1 on its first frame;
   * otherwise, on a compressed connection, a plain piece is also sent as it
   * is — a passing relay never compresses on its own (the peers' contexts must match).
   */
  sendOwnedFragment(data: Buffer, isBinary: boolean, first: boolean, fin: boolean, mask: Buffer | null, compressed = false): boolean {
    if (this.closeSent || this.finished) return false;
    const pmd = this.pmd;
    if (pmd !== null && (compressed || !(pmd.deflater?.idle ?? true))) {
      if (mask !== null) applyMask(data, mask);
      this.deflater().sendAsIs(data, isBinary, first, fin, compressed);
    } else {
      this.writer.writeFrameRemasked(first ? (isBinary ? OP_BINARY : OP_TEXT) : OP_CONT, data, fin, mask);
    }
    return this.checkBackpressure();
  }

  /** The compressing half, made on first use. */
  private deflater(): MessageDeflater {
    const pmd = this.pmd as PerMessageDeflate;
    return (pmd.deflater ??= new MessageDeflater(pmd.options, this.writer, this));
  }

  /** @internal DeflateSink: queued bytes reached the socket; a sink owed onDrain may get it now. */
  onDeflated(): void {
    const pmd = this.pmd;
    if (pmd !== null && pmd.deflater?.resting === true) pmd.deflater = null;
    if (this.needDrain && this.bufferedAmount <= this.opts.highWaterMark) this.awaitFlush();
  }

  /** @internal DeflateSink: zlib failed on our own data (should not happen). */
  onDeflateError(err: unknown): void {
    this.internalError(err);
  }

  /**
   * Binary pieces reach the sink still masked when `on` (text is always
   * unmasked: it is UTF-8 checked); `pieceMask` tells the key during delivery.
   * Every frame is validated as before. For a passthrough relay only.
   */
  deliverMasked(on: boolean): void {
    this.parser.maskedBinary = on;
  }

  /** During the sink's `onFragment`: the key that piece is still masked with, null when plain. */
  get pieceMask(): Buffer | null {
    return this.parser.pieceMask;
  }

  /**
   * Compressed messages reach the sink still compressed when `on`, each piece
   * once it has been inflated and checked (size, UTF-8), its plain bytes
   * dropped; `pieceCompressed` tells them apart during `onFragment`. For a
   * relay that passes compressed frames on to a peer with a compatible
   * agreement only.
   */
  deliverCompressed(on: boolean): void {
    if (this.pmd !== null) this.pmd.passCompressed = on;
  }

  /** During the sink's `onFragment`: the piece is compressed payload (see `deliverCompressed`). */
  get pieceCompressed(): boolean {
    return (this.flags & F_DELIVERING_COMPRESSED) !== 0;
  }

  /** Send a ping (application-level; keepalive pings are automatic). */
  ping(payload: Buffer = EMPTY): void {
    if (this.closeSent || this.finished) return;
    this.writer.writeFrame(OP_PING, payload, true);
  }

  private checkBackpressure(): boolean {
    if (this.bufferedAmount <= this.opts.highWaterMark) return true;
    if (!this.needDrain) {
      this.needDrain = true;
      this.awaitFlush();
    }
    return false;
  }

  /**
   * Make sure `onSocketDrain` runs once what is queued has gone. The socket
   * emits 'drain' only if its own high-water mark was passed; when ours is
   * lower, an empty write's callback tells us it flushed — queued behind the
   * tick's frames, which therefore go to the socket first.
   */
  private awaitFlush(): void {
    this.writer.spill();
    if (!this.socket.writableNeedDrain) this.socket.write(EMPTY, () => this.onSocketDrain());
  }

  /** end() the socket after the frames still in the writer's segment (our Close among them). */
  private endSocket(): void {
    const deflater = this.pmd?.deflater;
    if (deflater != null && !deflater.idle) {
      deflater.then(() => this.endSocket());
      return;
    }
    this.writer.spill();
    this.socket.end();
  }

  /** @internal socket listener */
  onSocketDrain(): void {
    if (this.pendingPong !== null && !this.closeSent && !this.finished) {
      const p = this.pendingPong;
      this.pendingPong = null;
      this.writer.writeFrame(OP_PONG, p, true);
    }
    if (this.needDrain && this.bufferedAmount <= this.opts.highWaterMark) {
      this.needDrain = false;
      this.sink?.onDrain?.();
    }
  }

  // ---- inbound flow control -------------------------------------------------

  pause(): void {
    if (this.userPaused) return;
    this.userPaused = true;
    this.socket.pause();
    this.parser.pause();
    this.pmd?.inflater?.pause();
  }

  resume(): void {
    if (!this.userPaused) return;
    this.userPaused = false;
    if (this.sink === null) return;
    try {
      this.startReading();
    } catch (err) {
      this.internalError(err);
    }
  }

  private startReading(): void {
    if (this.finished) return;
    // Restart the clocks: time spent paused is our doing, not the peer's
    // (a ping sent while paused waits for its pong from now on).
    this.lastActivity = clock();
    this.msgSeenAt = this.lastActivity;
    if (this.pingSentAt !== 0) this.pingSentAt = this.lastActivity;
    this.pmd?.inflater?.resume();
    // The parser and the socket go on once zlib is done with the piece (onInflateIdle).
    if (!this.inflating) this.readOn();
  }

  /** Resume the socket and the parser; the pings of what the parser releases get one pong, at the end. */
  private readOn(): void {
    if (!this.closeSent || this.endState().readAfterClose <= CLOSE_READ_BUDGET) this.socket.resume();
    if ((this.flags & F_READING) !== 0) {
      // Resumed from inside a delivery: the batch under way answers the pings.
      this.parser.resume();
    } else {
      this.flags |= F_READING;
      try {
        this.parser.resume();
      } finally {
        this.flags &= ~F_READING;
      }
      if (this.pendingPong !== null) this.answerPing();
    }
  }

  // ---- parser callbacks (FrameParserHandler) --------------------------------

  onData(data: Buffer, isBinary: boolean, first: boolean, fin: boolean, totalLength?: number): void {
    // RFC 6455 §5.5.1: after a Close, data is not processed.
    if (this.closeSent) return;
    if (this.pmd !== null && this.parser.messageCompressed) return this.inflatePiece(data, isBinary, first, fin);
    this.deliver(data, isBinary, first, fin, totalLength);
  }

  /**
   * A piece of a compressed message goes to zlib; reading stops until it is
   * done, so messages, and the Close after them, keep their order.
   */
  private inflatePiece(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void {
    const pmd = this.pmd as PerMessageDeflate;
    const inflater = (pmd.inflater ??= new MessageInflater(pmd.options, this.opts.maxMessage, this));
    inflater.passCompressed = pmd.passCompressed;
    this.inflating = true;
    this.parser.pause();
    this.socket.pause();
    inflater.write(data, isBinary, first, fin);
  }

  /** @internal InflateSink: inflated (and checked) data, or the checked compressed piece. */
  onInflated(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void {
    if (this.closeSent || this.finished) return;
    const compressed = this.pmd?.passCompressed === true;
    if (compressed) this.flags |= F_DELIVERING_COMPRESSED;
    try {
      this.deliver(data, isBinary, first, fin, first && fin && !compressed ? data.length : undefined);
    } catch (err) {
      this.internalError(err);
    } finally {
      this.flags &= ~F_DELIVERING_COMPRESSED;
    }
  }

  /** @internal InflateSink: the piece is done; read on unless paused. */
  onInflateIdle(): void {
    this.inflating = false;
    const pmd = this.pmd;
    if (pmd !== null && pmd.inflater?.resting === true) pmd.inflater = null;
    if (this.userPaused || this.sink === null || this.finished) return;
    try {
      // The parser may start on the next compressed piece, which pauses the socket again.
      this.readOn();
    } catch (err) {
      this.internalError(err);
    }
  }

  /** @internal InflateSink: too big (1009), not valid deflate data or not UTF-8 (1007). */
  onInflateError(code: number, reason: string): void {
    this.inflating = false;
    this.failConnection(code, reason);
    // As after our own close(): read on, data ignored, so that the peer's Close and FIN arrive.
    this.userPaused = false;
    if (this.sink !== null) this.startReading();
  }

  /** Hand a piece of a message to the sink: streamed as it is, or assembled into whole messages. */
  private deliver(data: Buffer, isBinary: boolean, first: boolean, fin: boolean, totalLength?: number): void {
    const sink = this.sink;
    if (sink === null) return;
    // A pong owed for a ping before this data goes first: what the sink sends in reply comes after it.
    if (this.pendingPong !== null) this.answerPing();
    this.bytesIn += data.length;
    if (fin) this.messagesIn++;
    if (sink.streaming === true) {
      sink.onFragment?.(data, isBinary, first, fin, totalLength);
      return;
    }
    if (first && fin) {
      sink.onMessage?.(data, isBinary);
      return;
    }
    const asm = (this.asm ??= new Assembly());
    if (first) {
      asm.binary = isBinary;
      if (totalLength !== undefined) {
        // One frame arriving in pieces: its length is known, allocate once.
        asm.buf = Buffer.allocUnsafe(totalLength);
        asm.pos = 0;
      } else {
        asm.parts = [];
        asm.len = 0;
      }
    }
    if (asm.buf !== null) {
      data.copy(asm.buf, asm.pos);
      asm.pos += data.length;
    } else if (data.length > 0) {
      // Copy: a view would pin the whole socket chunk for a tiny fragment.
      (asm.parts as Buffer[]).push(Buffer.from(data));
      asm.len += data.length;
    }
    if (fin) {
      const msg = asm.buf ?? Buffer.concat(asm.parts as Buffer[], asm.len);
      asm.buf = null;
      asm.parts = null;
      sink.onMessage?.(msg, asm.binary);
    }
  }

  onPing(payload: Buffer): void {
    if (this.closeSent) return;
    this.sink?.onControl?.(payload.length + this.controlHeaderBytes);
    // RFC 6455 §5.5.2-5.5.3: answer with a Pong carrying the same payload, as
    // soon as practical (also in the middle of a fragmented message) — but
    // only the most recent ping of a read batch (or before the batch's next
    // data), which §5.5.3 allows: a flood of pings in one read costs one pong,
    // not one write each. A copy: the payload may be a view of parser scratch
    // that the next split frame reuses.
    this.pendingPong = Buffer.from(payload);
    if ((this.flags & F_READING) === 0) this.answerPing();
  }

  /** Write the pong owed for the latest ping, or keep it for the drain when the socket is congested. */
  private answerPing(): void {
    const pong = this.pendingPong as Buffer;
    if (this.closeSent || this.finished) {
      this.pendingPong = null;
      return;
    }
    if (this.bufferedAmount > this.opts.highWaterMark) {
      this.awaitFlush();
      return;
    }
    this.pendingPong = null;
    this.writer.writeFrame(OP_PONG, pong, true);
  }

  onPong(payload: Buffer): void {
    this.sink?.onControl?.(payload.length + this.controlHeaderBytes);
    this.pingSentAt = 0;
  }

  /** Wire size of a control frame's header from the peer (its frames are masked when we are the server). */
  private get controlHeaderBytes(): number {
    return this.opts.role === 'server' ? CONTROL_HEADER_MASKED : CONTROL_HEADER_PLAIN;
  }

  onClose(code: number, reason: string): void {
    const end = this.endState();
    end.received = true;
    end.remoteCode = code;
    end.remoteReason = reason;
    if (!this.closeSent) {
      // RFC 6455 §5.5.1: reply with a Close, echoing the code (an empty Close
      // is answered with an empty Close: 1005 is never sent).
      end.initiator = 'remote';
      this.sendClose(code === CLOSE_NO_STATUS ? undefined : code, '');
    }
    this.handshakeDone();
  }

  onError(closeCode: number, reason: string): void {
    this.failConnection(closeCode, reason);
  }

  // ---- closing --------------------------------------------------------------

  close(code: number = CLOSE_NORMAL, reason = ''): void {
    if (this.closeSent || this.finished) return;
    if (code !== CLOSE_NO_STATUS && !isValidCloseCode(code)) throw new RangeError(`invalid close code ${code}`);
    this.endState().initiator ??= 'local';
    this.sendClose(code === CLOSE_NO_STATUS ? undefined : code, reason);
    // Keep reading (even if paused) so that the peer's Close can arrive.
    if (this.userPaused) {
      this.userPaused = false;
      if (this.sink !== null) this.startReading();
    }
  }

  terminate(): void {
    if (this.finished) return;
    this.endState().initiator ??= 'local';
    this.socket.destroy();
  }

  private sendClose(code: number | undefined, reason: string): void {
    this.closeSent = true;
    this.endState().at = clock();
    this.endState().readAfterClose = 0;
    this.pendingPong = null;
    if (this.socket.destroyed) return;
    const deflater = this.pmd?.deflater;
    // Our Close follows the messages still being compressed (RFC 6455 §5.5.1: it is the last frame).
    if (deflater != null && !deflater.idle) deflater.then(() => this.writer.writeClose(code, reason));
    else this.writer.writeClose(code, reason);
  }

  /** Both Closes exchanged (or we gave up on the peer's). Close TCP per role. */
  private handshakeDone(): void {
    this.endState().at = clock();
    if (this.role === 'server') {
      // RFC 6455 §7.1.1: the server closes the TCP connection first. end()
      // flushes our Close, then FIN; the close timeout destroys if the peer lingers.
      this.endSocket();
    }
    // Client role: wait for the server's FIN ('end'), destroy at the close timeout.
  }

  /** RFC 6455 §7.1.7 "Fail the WebSocket Connection": Close with a code, then close TCP. */
  private failConnection(code: number, reason: string): void {
    if (this.finished) return;
    this.opts.onViolation?.(code, reason, this);
    // Nothing more is owed to a peer whose connection is being failed: queued messages are dropped.
    this.pmd?.deflater?.drop();
    if (!this.closeSent) {
      this.endState().initiator ??= 'local';
      this.sendClose(code, reason);
    }
    this.endState().at = clock();
    this.endSocket();
  }

  /** @internal socket listener */
  onSocketEnd(): void {
    // The peer sent FIN. Answer with ours; an abrupt end without a Close is a
    // transport closure (reported as 1006).
    this.endState().initiator ??= 'transport';
    if (!this.socket.destroyed) this.endSocket();
  }

  /** Socket closed: release everything and report once. @internal socket listener */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    heartbeat.delete(this);
    this.asm = null;
    this.pendingPong = null;
    this.pmd?.destroy();
    const end = this.endState();
    const info: CloseInfo = {
      code: end.received ? end.remoteCode : CLOSE_ABNORMAL,
      reason: end.received ? end.remoteReason : '',
      wasClean: this.closeSent && end.received,
      initiator: end.initiator ?? 'transport',
    };
    end.info = info;
    if (this.sink !== null) this.reportClose();
    const onClosed = this.opts.onClosed;
    if (onClosed !== undefined) {
      try {
        onClosed(this, info);
      } catch (err) {
        this.opts.onError?.(err);
      }
    }
    const watchers = this.closeWatchers;
    this.closeWatchers = null;
    if (typeof watchers === 'function') this.safeCall(watchers, info);
    else if (watchers !== null) for (const fn of watchers) this.safeCall(fn, info);
  }

  /** Infrastructure hook: `fn` runs once when the connection has ended, after the sink's onClose. */
  whenClosed(fn: (info: CloseInfo) => void): void {
    const info = this.ending?.info;
    if (info) {
      this.safeCall(fn, info);
      return;
    }
    const watchers = this.closeWatchers;
    // A list only from the second watcher on.
    if (watchers === null) this.closeWatchers = fn;
    else if (typeof watchers === 'function') this.closeWatchers = [watchers, fn];
    else watchers.push(fn);
  }

  private safeCall(fn: (info: CloseInfo) => void, info: CloseInfo): void {
    try {
      fn(info);
    } catch (err) {
      this.opts.onError?.(err);
    }
  }

  private reportClose(): void {
    const end = this.ending;
    if (end === null || end.reported || end.info === null || this.sink === null) return;
    end.reported = true;
    try {
      this.sink.onClose?.(end.info);
    } catch (err) {
      this.opts.onError?.(err);
    }
  }

  // ---- timers (heartbeat tick) ----------------------------------------------

  tick(now: number): void {
    if (this.finished) return;
    const o = this.opts;
    const end = this.ending;
    if (this.closeSent || (end !== null && end.received)) {
      // RFC 6455 §7.1.1 / §5.5.1: do not wait forever for the peer's Close or FIN.
      if (now - (end as Ending).at >= o.closeTimeout) this.socket.destroy();
      return;
    }
    if (this.sink === null) return;
    if (o.sendStallTimeout !== undefined && o.sendStallTimeout > 0 && this.writeStalled(now, o.sendStallTimeout)) return;
    if (this.userPaused) {
      // We stopped reading (backpressure): the peer's silence is not its own,
      // so no idle, pong or message deadline runs; keepalive pings still go out.
      this.keepalive(now);
      return;
    }
    const frames = this.parser.framesIn;
    if (frames !== this.lastFrames) {
      this.lastFrames = frames;
      this.lastActivity = now;
    }
    if (o.pongTimeout > 0 && this.pingSentAt !== 0 && now - this.pingSentAt >= o.pongTimeout) {
      // Dead peer / half-open TCP: drop without a close handshake.
      this.opts.onViolation?.(CLOSE_ABNORMAL, 'pong timeout', this);
      this.terminate();
      return;
    }
    if (o.idleTimeout > 0 && now - this.lastActivity >= o.idleTimeout) {
      this.opts.onViolation?.(CLOSE_GOING_AWAY, 'idle timeout', this);
      this.close(CLOSE_GOING_AWAY, 'idle timeout');
      return;
    }
    if (o.messageTimeout > 0 && this.parser.messageOpen) {
      if (this.parser.messagesBegun !== this.msgSeq) {
        this.msgSeq = this.parser.messagesBegun;
        this.msgSeenAt = now;
      } else if (now - this.msgSeenAt >= o.messageTimeout) {
        this.failConnection(CLOSE_POLICY_VIOLATION, 'message timeout');
        return;
      }
    }
    this.keepalive(now);
  }

  private keepalive(now: number): void {
    const o = this.opts;
    if (o.pingInterval > 0 && this.pingSentAt === 0 && now - this.lastActivity >= o.pingInterval) {
      this.pingSentAt = now;
      this.writer.writeFrame(OP_PING, EMPTY, true);
    }
  }

  /** A queue over the high-water mark that no byte has left for `timeout`: drop (true when dropped). */
  private writeStalled(now: number, timeout: number): boolean {
    if (!this.needDrain) {
      this.stall = null;
      return false;
    }
    const delivered = this.deliveredBytes;
    const stall = this.stall;
    if (stall === null || stall.delivered !== delivered) {
      this.stall = { delivered, since: now };
      return false;
    }
    if (now - stall.since < timeout) return false;
    this.opts.onViolation?.(CLOSE_ABNORMAL, 'send stalled', this);
    this.terminate();
    return true;
  }
}
