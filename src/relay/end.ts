/**
 * One side of a relay. A Channel is one; a backend link adapts to the same
 * shape (a `WebSocketConnection` in client role is one, `TcpLink` adapts a socket).
 */
import type { ChannelSink } from '../channel.js';

export interface RelayEnd {
  readonly closed: boolean;
  attach(sink: ChannelSink): void;
  sendFragment(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): boolean;
  /**
   * Optional: like `sendFragment`, but `data` is handed over (the relay never
   * reads it again) and is masked with `mask`, or plain when null; the end
   * re-masks it in place for its own wire instead of copying it. With
   * `compressed`, `data` is a permessage-deflate message's payload, sent as it
   * is (RSV1 on its first frame); without, it is sent as it is, uncompressed.
   */
  sendOwnedFragment?(data: Buffer, isBinary: boolean, first: boolean, fin: boolean, mask: Buffer | null, compressed?: boolean): boolean;
  /** Optional, as the Channel's: deliver compressed pieces as they are (see Channel). */
  deliverCompressed?(on: boolean): void;
  readonly pieceCompressed?: boolean;
  pause(): void;
  resume(): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
}

/** An end that takes owned pieces (the passthrough relay's raw frame path). */
export type OwnedRelayEnd = RelayEnd & Required<Pick<RelayEnd, 'sendOwnedFragment'>>;
