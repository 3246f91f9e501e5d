/**
 * Backpressure, end to end: when one side's `sendFragment` reports "full" the
 * relay pauses the other side (which stops reading its socket, so TCP flow
 * control reaches the far peer), and resumes it on the drain signal. Memory
 * per connection is therefore bounded by the two high-water marks plus one
 * socket read, whatever the peers do.
 *
 * The Relay's base class rather than an object of its own: the two flags
 * live in the relay itself, with no extra object per connection (memory per
 * idle connection is a design target).
 */
import type { Channel } from '../channel.js';
import type { OwnedRelayEnd, RelayEnd } from './end.js';

export abstract class Backpressure {
  private clientPaused = false;
  private backendPaused = false;
  /** Set once either side has ended: from then on nothing more is relayed or resumed. */
  protected ending = false;

  constructor(protected readonly client: Channel, protected readonly backend: RelayEnd) {}

  /** A piece to the backend; the client is paused while the backend is full. */
  protected toBackend(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void {
    if (!this.backend.sendFragment(data, isBinary, first, fin) && !this.clientPaused) {
      this.clientPaused = true;
      this.client.pause();
    }
  }

  /** As `toBackend`, handing the piece over still masked with `mask` (the raw frame path), compressed or not as it came. */
  protected toBackendOwned(data: Buffer, isBinary: boolean, first: boolean, fin: boolean, mask: Buffer | null, compressed: boolean): void {
    if (!(this.backend as OwnedRelayEnd).sendOwnedFragment(data, isBinary, first, fin, mask, compressed) && !this.clientPaused) {
      this.clientPaused = true;
      this.client.pause();
    }
  }

  /** A piece of a compressed message to the client as it came from the backend (compressed frames passing). */
  protected toClientAsIs(data: Buffer, isBinary: boolean, first: boolean, fin: boolean, compressed: boolean): void {
    const client = this.client as Channel & Required<Pick<Channel, 'sendOwnedFragment'>>;
    if (!client.sendOwnedFragment(data, isBinary, first, fin, null, compressed) && !this.backendPaused) {
      this.backendPaused = true;
      this.backend.pause();
    }
  }

  /** A piece to the client; the backend is paused while the client is full. */
  protected toClient(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void {
    if (!this.client.sendFragment(data, isBinary, first, fin) && !this.backendPaused) {
      this.backendPaused = true;
      this.backend.pause();
    }
  }

  /** The backend's outbound buffer drained: read from the client again. */
  backendDrained(): void {
    if (this.clientPaused && !this.ending) {
      this.clientPaused = false;
      this.client.resume();
    }
  }

  /** The client's outbound buffer drained: read from the backend again. */
  clientDrained(): void {
    if (this.backendPaused && !this.ending) {
      this.backendPaused = false;
      this.backend.resume();
    }
  }
}
