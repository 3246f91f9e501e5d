/**
 * The echo service: every message comes back as it was sent. Built only on the
 * Channel, so it works the same over WebSocket and the HTTP fallback. It
 * streams (each piece goes back as it arrives) and honours backpressure: when
 * the way back is full it stops reading until the channel drains.
 */
import type { Channel, ChannelSink } from '../channel.js';
import type { Service, ServiceSession } from './types.js';

export class EchoService implements Service {
  constructor(readonly name: string) {}

  /** Nothing to dial: answered synchronously, one shared session object for every client. */
  open(): ServiceSession {
    return ECHO_SESSION;
  }
}

const ECHO_SESSION: ServiceSession = Object.freeze({
  attach(channel: Channel) { channel.attach(new EchoSink(channel)); },
  abort() { /* nothing was opened */ },
});

class EchoSink implements ChannelSink {
  readonly streaming = true;
  constructor(private readonly channel: Channel) {}

  onFragment(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void {
    const ok = first && fin
      ? this.channel.send(data, isBinary)
      : this.channel.sendFragment(data, isBinary, first, fin);
    if (!ok) this.channel.pause();
  }

  onDrain(): void {
    this.channel.resume();
  }
}
