/**
 * The pub/sub bus of the workers of one machine without Redis: a worker
 * sends what it publishes to the primary, which sends it to every worker
 * (the publisher's too); each delivers to its own subscribers. One hub, so
 * what one worker publishes reaches every subscriber in publish order.
 */
import { LocalSubscribers, type MessageBus } from '../bus.js';
import type { IpcClient, IpcPort } from './ipc.js';

/** What the primary sends every worker for each message. */
export interface BusMessage { gh: 'bus'; channel: string; message: string }

export class IpcBus implements MessageBus {
  private readonly subscribers = new LocalSubscribers();

  constructor(private readonly client: IpcClient, port: IpcPort) {
    port.on('message', (m) => {
      const b = m as BusMessage;
      if (b?.gh === 'bus') this.subscribers.deliver(b.channel, b.message);
    });
  }

  publish(channel: string, message: string): void {
    this.client.notify('bus', 'publish', [channel, message]);
  }

  subscribe(channel: string, deliver: (message: string) => void): () => void {
    this.subscribers.add(channel, deliver);
    return () => { this.subscribers.remove(channel, deliver); };
  }
}
