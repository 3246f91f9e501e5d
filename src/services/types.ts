/**
 * A Service is where admitted traffic goes. Opening happens in two steps so that
 * a backend can be dialled (and refuse with 502 / 504) before the client gets its 101.
 */
import type { Admission } from '../admitted.js';
import type { Channel } from '../channel.js';
import type { DeflateOptions } from '../websocket/permessage-deflate.js';

/** What the client's opening handshake settled before the service is opened. */
export interface Opening {
  /** permessage-deflate as agreed with the client (null: its WebSocket is not compressed, or it is not a WebSocket). */
  deflate: DeflateOptions | null;
}

export interface ServiceSession {
  /** The subprotocol the backend chose, when the service decides it (websocket backends). */
  readonly protocol?: string;
  /** Join the client channel; from here the session owns it. */
  attach(channel: Channel): void;
  /** The client handshake failed after `open`: release the backend. */
  abort(): void;
}

export interface Service {
  readonly name: string;
  /**
   * Prepare a backend link for an admitted client. Throws (or rejects with)
   * BackendError to refuse. A service with nothing to dial may answer synchronously.
   */
  open(admission: Admission, opening?: Opening): ServiceSession | Promise<ServiceSession>;
  /** Sessions open now (services that keep backend links); absent: none to wait for. */
  readonly liveConnections?: number;
  /** Gateway is draining: close backends cleanly. */
  shutdown?(): Promise<void>;
}
