/**
 * What one client connection has carried so far, as plain integers the
 * transport's guard adds to as messages pass (src/admission/channel-guard.ts).
 * The admin API, the access log and the dashboard read it; nothing on the
 * ground floor writes it.
 */
import type { Channel } from '../channel.js';

export interface ConnectionTraffic {
  /** Messages and payload bytes from the client. */
  readonly messagesIn: number;
  readonly bytesIn: number;
  /** Messages and payload bytes queued toward the client. */
  readonly messagesOut: number;
  readonly bytesOut: number;
  /** When the connection opened, on `monoClock` (src/clock.ts). */
  readonly openedAt: number;
}

/** Finds a channel's traffic record (the composition root supplies the guard's). */
export type TrafficReader = (channel: Channel) => ConnectionTraffic | undefined;
