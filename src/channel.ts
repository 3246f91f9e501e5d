/**
 * The Channel: the one contract between transports (WebSocket, HTTP fallback),
 * the relay and services. Nothing above a Channel can tell the transports apart.
 *
 * Delivery is push-based through a single sink object rather than an
 * EventEmitter: one virtual call per message on the hot path, no listener arrays.
 */
import type { Admission } from './admitted.js';

/** How a channel ended. `code` 1005 / 1006 are local-only values, never sent. */
export interface CloseInfo {
  code: number;
  reason: string;
  /** true when a close handshake completed in both directions */
  wasClean: boolean;
  /** who started the close */
  initiator: 'local' | 'remote' | 'transport';
}

export interface ChannelSink {
  /**
   * When true the channel delivers messages as they arrive, fragment by
   * fragment, through `onFragment`; otherwise whole messages through `onMessage`.
   * Text fragments are already UTF-8 validated (incrementally) when delivered.
   */
  readonly streaming?: boolean;
  onMessage?(data: Buffer, isBinary: boolean): void;
  /**
   * One piece of a message. `first` marks the first piece (its `isBinary` is the
   * message type), `fin` the last. `totalLength` is the message length when the
   * transport knows it up front (an unfragmented frame), else undefined.
   */
  onFragment?(data: Buffer, isBinary: boolean, first: boolean, fin: boolean, totalLength?: number): void;
  /**
   * A control frame (WebSocket ping or pong) of `bytes` on the wire arrived.
   * The transport answers pings itself; this is for in-connection rate
   * limits, so that control traffic is metered like messages.
   */
  onControl?(bytes: number): void;
  /** Outbound buffer fell below the low-water mark after `send` returned false. */
  onDrain?(): void;
  /** Called exactly once. */
  onClose?(info: CloseInfo): void;
}

export interface Channel {
  readonly transport: 'websocket' | 'fallback';
  /** Negotiated subprotocol, '' when none. */
  readonly protocol: string;
  /** Negotiated extensions as they would appear in Sec-WebSocket-Extensions, '' when none. */
  readonly extensions: string;
  /** The admission the channel came in with; absent on client-role (backend) connections. */
  readonly admission?: Admission;
  /** Bytes accepted by `send` but not yet handed to the network. */
  readonly bufferedAmount: number;
  /**
   * Running total of bytes that have left the outbound queue: handed to the
   * network (WebSocket) or acknowledged by the client (fallback). A reader's
   * progress is this number moving; `bufferedAmount` alone cannot tell a
   * stalled reader from one that reads as fast as it is sent to.
   */
  readonly deliveredBytes: number;
  readonly closed: boolean;

  /**
   * Infrastructure (front door, guards, credential expiry) learns of the end
   * here; the service learns through its sink. Called once, after the sink's onClose.
   */
  whenClosed(fn: (info: CloseInfo) => void): void;

  /** Install the receiver of inbound traffic. Messages are queued until a sink is attached. */
  attach(sink: ChannelSink): void;

  /** Send one whole message. Returns false when the outbound buffer is above its high-water mark. */
  send(data: Buffer | string, isBinary: boolean): boolean;
  /**
   * Send one piece of a message (streaming relay). `first` starts a message of
   * the given type; `fin` ends it. Pieces of one message must not interleave
   * with other sends.
   */
  sendFragment(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): boolean;

  /**
   * Optional (WebSocket transport), for a passthrough relay only: deliver
   * binary pieces still masked, the key in `pieceMask` during `onFragment`
   * (null for a plain piece), so that the next hop re-masks in one pass.
   */
  deliverMasked?(on: boolean): void;
  readonly pieceMask?: Buffer | null;
  /**
   * Optional (WebSocket transport with permessage-deflate), for a relay that
   * passes compressed frames on: compressed pieces are delivered compressed
   * once checked, `pieceCompressed` true during `onFragment`; and
   * `sendOwnedFragment(…, compressed)` sends a piece as it was received.
   */
  deliverCompressed?(on: boolean): void;
  readonly pieceCompressed?: boolean;
  sendOwnedFragment?(data: Buffer, isBinary: boolean, first: boolean, fin: boolean, mask: Buffer | null, compressed?: boolean): boolean;

  /** Stop delivering inbound messages (and stop reading from the network). */
  pause(): void;
  resume(): void;

  /** Start the close handshake (or end the session) with a code and reason. */
  close(code?: number, reason?: string): void;
  /** Drop at once, without a close handshake. */
  terminate(): void;
}
