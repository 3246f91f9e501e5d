/**
 * Durable subscriptions, bound to the identity the gateway verified.
 *
 * RabbitMQ names the queue of a durable subscription (`durable:true` or
 * `persistent:true` on a SUBSCRIBE to a /topic/ or /exchange/ destination)
 * from the destination and the subscription `id` alone, and the queue is
 * shared: two users allowed the same destination who pick the same id would
 * consume from one queue — each reading, or taking, the other's messages.
 * An UNSUBSCRIBE carrying the durable header deletes the queue of that name
 * (or the one its own `x-queue-name` names).
 *
 * So the gateway names the queue itself: a durable SUBSCRIBE gets an
 * `x-queue-name` computed from the principal, the destination and the id
 * (the client may not send one), and a durable UNSUBSCRIBE the same name,
 * from the destination the gateway recorded for that id. Different
 * principals can never reach the same name; the same principal finds its
 * queue again on its next connection. Without a principal there is nobody to
 * bind the queue to, and a durable SUBSCRIBE is refused.
 */
import { createHash } from 'node:crypto';
import type { PlaceholderIdentity } from '../placeholders.js';
import type { StompFrame } from './frame.js';

/** RabbitMQ's own server-named STOMP queues start with this; policies matching `^stomp-` keep applying. */
const PREFIX = 'stomp-subscription-';

/** Does the broker read this frame as durable? (RabbitMQ: `durable` or its alias `persistent`, true.) */
export function isDurable(frame: StompFrame): boolean {
  return isTrue(frame.header('durable')) || isTrue(frame.header('persistent'));
}

/**
 * Wider than RabbitMQ's reading (`true` / `True`): a value some broker might
 * read as true is treated as durable; naming a queue that is not durable
 * costs nothing.
 */
function isTrue(value: string | undefined): boolean {
  return value !== undefined && value.trim().toLowerCase() === 'true';
}

/**
 * The queue of `principal`'s durable subscription `id` on `destination`;
 * undefined without a principal. A hash keeps the name within RabbitMQ's
 * 255 bytes whatever the inputs, and the JSON array keeps the three apart
 * (no id/destination split can make another principal's triple).
 */
export function durableQueueName(principal: PlaceholderIdentity | undefined, destination: string, id: string): string | undefined {
  if (principal === undefined || principal.id === '') return undefined;
  const digest = createHash('sha256').update(JSON.stringify([principal.id, destination, id])).digest('base64url');
  return PREFIX + digest;
}

/**
 * Does `destination` name a durable subscription's queue directly? The queues
 * the gateway names are reached only through their subscription: `/queue/<name>`
 * and `/amq/queue/<name>` would consume (or, with SEND, fill) another user's
 * queue, and the default exchange routes by queue name. Any segment that names
 * one, read as RabbitMQ reads it (it undoes `%2F`; every `%XX` is undone here,
 * wider than that), is refused, whatever the patterns allow.
 */
export function namesSubscriptionQueue(destination: string): boolean {
  if (!destination.includes(PREFIX) && !destination.includes('%')) return false;
  for (const segment of destination.split('/')) if (decoded(segment).startsWith(PREFIX)) return true;
  return false;
}

function decoded(segment: string): string {
  if (!segment.includes('%')) return segment;
  return segment.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}
