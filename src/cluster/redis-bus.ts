/**
 * The pub/sub bus on Redis (`cluster.redis`): PUBLISH on one connection,
 * SUBSCRIBE on a second (a subscribed connection runs no other commands),
 * each channel subscribed once per process however many of its clients
 * listen, and unsubscribed when the last one leaves. What this process
 * publishes comes back through Redis like anyone else's, so every subscriber
 * sees one order. Messages published while Redis is away are lost (pub/sub
 * is at most once).
 *
 * At each (re)connect every channel with subscribers here is subscribed
 * again: ioredis re-subscribes only the channels Redis confirmed, and a
 * SUBSCRIBE sent while Redis was away failed — its subscribers, told they
 * were subscribed, would never hear of the channel again.
 */
import { LocalSubscribers, type MessageBus } from '../bus.js';
import { SharedStateUnavailable } from '../errors.js';
import { keyer, ready, type RedisClient } from './redis.js';

export class RedisBus implements MessageBus {
  private readonly subscribers = new LocalSubscribers();
  private readonly key: (name: string) => string;
  private readonly prefixLength: number;

  constructor(private readonly publisher: RedisClient, private readonly subscriber: RedisClient, prefix: string) {
    this.key = keyer(prefix);
    this.prefixLength = this.key('ps:').length;
    subscriber.on('message', (key: string, message: string) => this.subscribers.deliver(key.slice(this.prefixLength), message));
    subscriber.on('ready', () => this.subscribeAll());
  }

  private subscribeAll(): void {
    const keys = this.subscribers.names().map((channel) => this.key(`ps:${channel}`));
    if (keys.length > 0) void this.subscriber.subscribe(...keys).catch(() => undefined);
  }

  async publish(channel: string, message: string): Promise<void> {
    if (!ready(this.publisher)) throw new SharedStateUnavailable('redis is not connected');
    await this.publisher.publish(this.key(`ps:${channel}`), message);
  }

  subscribe(channel: string, deliver: (message: string) => void): () => void {
    if (this.subscribers.add(channel, deliver).first) void this.subscriber.subscribe(this.key(`ps:${channel}`)).catch(() => undefined);
    return () => {
      if (this.subscribers.remove(channel, deliver).last) void this.subscriber.unsubscribe(this.key(`ps:${channel}`)).catch(() => undefined);
    };
  }
}
