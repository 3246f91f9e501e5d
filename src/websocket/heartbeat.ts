/**
 * One shared, coarse scheduler for every per-connection timer (keepalive ping,
 * pong timeout, idle timeout, message assembly timeout, close timeout).
 *
 * A `setTimeout` per connection costs a Timeout object and a timer-list entry
 * each, re-armed on activity; at 10,000 idle connections that is memory we do
 * not want (target ≤ 4 KiB per idle connection). Instead connections keep
 * plain counters and timestamps, and one unref'd interval visits them all,
 * comparing against `now`. Precision is one tick.
 *
 * The tick adapts: it is 1 s by default and shortens (down to 10 ms) when a
 * member registers with a shorter timeout (tests, aggressive configs); it is
 * reset when the last member leaves.
 */
import { monoClock } from '../clock.js';

export interface HeartbeatMember {
  /** Called once per tick with `monoClock()` (src/clock.ts). Must not throw. */
  tick(now: number): void;
}

export class Heartbeat {
  private readonly members = new Set<HeartbeatMember>();
  private timer: NodeJS.Timeout | null = null;
  private readonly maxResolution: number;
  private resolution: number;

  constructor(maxResolution = 1000) {
    this.maxResolution = maxResolution;
    this.resolution = maxResolution;
  }

  get size(): number {
    return this.members.size;
  }

  /** Register a member. `shortestTimeout` (ms, 0 = none) lets the tick shorten to a quarter of it. */
  add(member: HeartbeatMember, shortestTimeout = 0): void {
    this.members.add(member);
    if (shortestTimeout > 0) {
      const want = Math.max(10, Math.min(this.maxResolution, Math.floor(shortestTimeout / 4)));
      if (want < this.resolution) {
        this.resolution = want;
        this.stop();
      }
    }
    if (this.timer === null) {
      this.timer = setInterval(() => this.run(), this.resolution);
      this.timer.unref();
    }
  }

  delete(member: HeartbeatMember): void {
    this.members.delete(member);
    if (this.members.size === 0) {
      this.stop();
      this.resolution = this.maxResolution;
    }
  }

  private stop(): void {
    if (this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  private run(): void {
    const now = monoClock();
    for (const m of this.members) {
      try {
        m.tick(now);
      } catch {
        // A member's bug must not stop the others' timers; members never throw by contract.
      }
    }
  }
}

/** The process-wide scheduler used by WebSocketConnection. */
export const heartbeat = new Heartbeat();
