/**
 * The checks of the client's frames, one function per command, each
 * answering: pass (undefined), pass these bytes instead (a Buffer: the frame
 * rewritten), or refuse (a Refusal). Ordered small checks, cheapest first;
 * nothing here keeps state but what the caller hands in.
 *
 * Header policy (docs/inspection.md):
 * - A header the gateway checks or rewrites may appear only once: STOMP says
 *   the first of repeated headers wins, but not every broker agrees, and the
 *   frame the broker acts on must be the frame that was checked (1002).
 * - SUBSCRIBE: `destination` against `subscribe`; `selector` (an expression
 *   some brokers evaluate) and RabbitMQ's `x-queue-name` (which would let a
 *   subscription consume from a queue of the client's choosing) are refused.
 *   A durable subscription gets an `x-queue-name` of the gateway's, bound to
 *   the principal (durable.ts); so does a durable UNSUBSCRIBE, which deletes
 *   that queue, and which may not name one itself.
 * - SUBSCRIBE and SEND: RabbitMQ's queue arguments that name a destination,
 *   `x-dead-letter-exchange` and `x-dead-letter-routing-key`, are refused
 *   (RabbitMQ declares a /queue/ destination with them on either frame, and
 *   would route the client's expired or rejected messages where it may not send).
 * - SEND: `destination` against `send`, inside a transaction or not;
 *   `reply-to` must be a `/temp-queue/...` (private to the connection) or a
 *   destination the client may subscribe to; `user-id` is stripped (the
 *   broker's consumers must not read an identity the gateway did not verify).
 * - SUBSCRIBE, SEND and `reply-to`: a destination naming a durable
 *   subscription's queue itself (`/queue/stomp-subscription-…`) is refused
 *   whatever the patterns say (durable.ts).
 * - CONNECT/STOMP: see connect.ts.
 */
import type { PlaceholderIdentity } from '../placeholders.js';
import type { DestinationPattern } from './destinations.js';
import { durableQueueName, isDurable, namesSubscriptionQueue } from './durable.js';
import type { StompFrame, StompVersion } from './frame.js';
import type { StompPolicy } from './policy.js';
import { writeFrame } from './writer.js';

/** A refused frame: the close code, a stable reason, the text of the ERROR frame's `message`. */
export interface Refusal {
  readonly code: number;
  readonly reason: string;
  readonly message: string;
  readonly destination?: string;
}

export function refusal(code: number, reason: string, message: string, destination?: string): Refusal {
  return { code, reason, message, destination };
}

/** The first of `names` that occurs more than once in the frame. */
export function repeatedHeader(frame: StompFrame, names: readonly string[]): string | undefined {
  for (const n of names) if (frame.count(n) > 1) return n;
  return undefined;
}

function allowed(patterns: readonly DestinationPattern[], destination: string, identity: PlaceholderIdentity | undefined): boolean {
  for (const p of patterns) if (p.matches(destination, identity)) return true;
  return false;
}

const SUBSCRIBE_HEADERS = ['destination', 'id', 'selector', 'x-queue-name', 'durable', 'persistent'];
const UNSUBSCRIBE_HEADERS = ['id', 'destination', 'x-queue-name', 'durable', 'persistent'];
const SEND_HEADERS = ['destination', 'reply-to', 'user-id', 'transaction'];
/** Headers that name a destination for the broker outside the policy's view: refused wherever they appear. */
const ROUTING_HEADERS = ['x-dead-letter-exchange', 'x-dead-letter-routing-key'];

function routingHeader(frame: StompFrame, destination: string): Refusal | undefined {
  for (const name of ROUTING_HEADERS) if (frame.count(name) > 0) return refusal(1008, 'stomp_header_refused', `${name} is not allowed`, destination);
  return undefined;
}

/**
 * SUBSCRIBE, given how many subscriptions are open (and whether its id is one
 * of them); a durable one is passed on with the queue name bound to the principal.
 */
export function checkSubscribe(frame: StompFrame, policy: StompPolicy, identity: PlaceholderIdentity | undefined, open: number, known: boolean, version: StompVersion): Refusal | Buffer | undefined {
  const repeated = repeatedHeader(frame, SUBSCRIBE_HEADERS);
  if (repeated) return refusal(1002, 'stomp_repeated_header', `repeated header ${repeated}`);
  const destination = frame.header('destination');
  if (destination === undefined) return refusal(1002, 'stomp_missing_header', 'SUBSCRIBE without destination');
  if (frame.header('selector') !== undefined) return refusal(1008, 'stomp_selector_refused', 'selector is not allowed', destination);
  if (frame.header('x-queue-name') !== undefined) return refusal(1008, 'stomp_header_refused', 'x-queue-name is not allowed', destination);
  const routing = routingHeader(frame, destination);
  if (routing) return routing;
  if (!known && open >= policy.maxSubscriptions) return refusal(1008, 'stomp_too_many_subscriptions', `more than ${policy.maxSubscriptions} subscriptions`, destination);
  if (!allowed(policy.subscribe, destination, identity)) return refusal(1008, 'stomp_subscribe_denied', 'subscription not allowed', destination);
  if (namesSubscriptionQueue(destination)) return subscriptionQueueRefused(destination);
  if (!isDurable(frame)) return undefined;
  const id = frame.header('id');
  if (id === undefined) return refusal(1002, 'stomp_missing_header', 'durable SUBSCRIBE without id', destination);
  return withDurableQueue(frame, identity, destination, id, version);
}

/**
 * UNSUBSCRIBE, given the destination of the subscription its id names (when
 * the gateway passed one): a durable one deletes the principal's own queue.
 * Without a recorded subscription the broker has none either, and deletes nothing.
 */
export function checkUnsubscribe(frame: StompFrame, identity: PlaceholderIdentity | undefined, destination: string | undefined, version: StompVersion): Refusal | Buffer | undefined {
  const repeated = repeatedHeader(frame, UNSUBSCRIBE_HEADERS);
  if (repeated) return refusal(1002, 'stomp_repeated_header', `repeated header ${repeated}`);
  if (frame.header('x-queue-name') !== undefined) return refusal(1008, 'stomp_header_refused', 'x-queue-name is not allowed', destination);
  if (!isDurable(frame) || destination === undefined) return undefined;
  const id = frame.header('id');
  if (id === undefined) return refusal(1002, 'stomp_missing_header', 'durable UNSUBSCRIBE without id', destination);
  return withDurableQueue(frame, identity, destination, id, version);
}

function subscriptionQueueRefused(destination: string): Refusal {
  return refusal(1008, 'stomp_subscription_queue_refused', 'a durable subscription\'s queue is reached through its subscription only', destination);
}

/** The frame with the principal's queue name for durable subscription `id` on `destination`. */
function withDurableQueue(frame: StompFrame, identity: PlaceholderIdentity | undefined, destination: string, id: string, version: StompVersion): Refusal | Buffer {
  const queue = durableQueueName(identity, destination, id);
  if (queue === undefined) return refusal(1008, 'stomp_identity_unavailable', 'a durable subscription needs an authenticated user', destination);
  return rewritten(frame, undefined, ['x-queue-name', queue], version) ?? refusal(1002, 'stomp_syntax', 'frame cannot be rewritten');
}

/** SEND: the checks, and the frame without `user-id` when it had one. */
export function checkSend(frame: StompFrame, policy: StompPolicy, identity: PlaceholderIdentity | undefined, version: StompVersion): Refusal | Buffer | undefined {
  const repeated = repeatedHeader(frame, SEND_HEADERS);
  if (repeated) return refusal(1002, 'stomp_repeated_header', `repeated header ${repeated}`);
  const destination = frame.header('destination');
  if (destination === undefined) return refusal(1002, 'stomp_missing_header', 'SEND without destination');
  const routing = routingHeader(frame, destination);
  if (routing) return routing;
  if (!allowed(policy.send, destination, identity)) return refusal(1008, 'stomp_send_denied', 'send not allowed', destination);
  if (namesSubscriptionQueue(destination)) return subscriptionQueueRefused(destination);
  const replyTo = frame.header('reply-to');
  if (replyTo !== undefined && !replyTo.startsWith('/temp-queue/') && !allowed(policy.subscribe, replyTo, identity)) {
    return refusal(1008, 'stomp_reply_to_denied', 'reply-to not allowed', replyTo);
  }
  if (replyTo !== undefined && namesSubscriptionQueue(replyTo)) return subscriptionQueueRefused(replyTo);
  if (frame.header('user-id') === undefined) return undefined;
  return rewritten(frame, 'user-id', [], version) ?? refusal(1002, 'stomp_syntax', 'frame cannot be rewritten');
}

/** The frame written again without header `drop` and with `add` (flat: name, value, ...); body and other headers as they were. */
function rewritten(frame: StompFrame, drop: string | undefined, add: readonly string[], version: StompVersion): Buffer | undefined {
  const headers: string[] = [];
  const h = frame.headers;
  for (let i = 0; i < h.length; i += 2) if (h[i] !== drop) headers.push(h[i], h[i + 1]);
  headers.push(...add);
  return writeFrame(frame.command, headers, frame.body, version);
}
