/**
 * The message bus of the `pubsub` service: a message published on a channel
 * reaches every subscriber of that channel, in this process and — in a
 * cluster — in every other (through the workers' primary, or Redis pub/sub;
 * implementations in src/cluster/). Channels are exact names, already
 * authorized by the caller; messages are opaque text.
 *
 * Delivery is at most once and in publish order per publisher: what a process
 * publishes reaches each subscriber in the order it was published.
 */
export interface MessageBus {
  /** Sends `message` to every subscriber of `channel`, everywhere (this process's included). */
  publish(channel: string, message: string): void | Promise<void>;
  /** Calls `deliver` for each message on `channel` until the returned function is called. */
  subscribe(channel: string, deliver: (message: string) => void): () => void;
}

/** Subscribers per channel in this process: what every bus delivers to. */
export class LocalSubscribers {
  private readonly byChannel = new Map<string, Set<(message: string) => void>>();

  /** Adds one; `first` tells the caller the channel had none (subscribe upstream). */
  add(channel: string, deliver: (message: string) => void): { first: boolean } {
    let set = this.byChannel.get(channel);
    const first = set === undefined;
    if (!set) { set = new Set(); this.byChannel.set(channel, set); }
    set.add(deliver);
    return { first };
  }

  /** Removes one; `last` tells the caller the channel has none left (unsubscribe upstream). */
  remove(channel: string, deliver: (message: string) => void): { last: boolean } {
    const set = this.byChannel.get(channel);
    if (!set || !set.delete(deliver)) return { last: false };
    if (set.size > 0) return { last: false };
    this.byChannel.delete(channel);
    return { last: true };
  }

  deliver(channel: string, message: string): void {
    const set = this.byChannel.get(channel);
    if (!set) return;
    for (const fn of [...set]) {
      try { fn(message); } catch { /* one subscriber must not break the others */ }
    }
  }

  get channels(): number { return this.byChannel.size; }

  /** The channels that have subscribers now. */
  names(): string[] { return [...this.byChannel.keys()]; }
}

/** The bus of one process on its own. */
export class LocalBus implements MessageBus {
  private readonly subscribers = new LocalSubscribers();

  publish(channel: string, message: string): void {
    this.subscribers.deliver(channel, message);
  }

  subscribe(channel: string, deliver: (message: string) => void): () => void {
    this.subscribers.add(channel, deliver);
    return () => { this.subscribers.remove(channel, deliver); };
  }
}
