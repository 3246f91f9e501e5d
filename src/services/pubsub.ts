/**
 * The `pubsub` service: the gateway is the broker. Clients speak
 * `gatehouse.pubsub.v1` (docs/pubsub.md), one JSON object per text message:
 *
 *   → {"type":"subscribe","channel":"news.sport","id":1}     ← {"type":"subscribed","channel":"news.sport","id":1}
 *   → {"type":"unsubscribe","channel":"news.sport","id":2}   ← {"type":"unsubscribed","channel":"news.sport","id":2}
 *   → {"type":"publish","channel":"chat.1","data":{…},"id":3} ← {"type":"published","channel":"chat.1","id":3}
 *                                                             ← {"type":"message","channel":"chat.1","data":{…}}
 *   a refused request                                         ← {"type":"error","code":"forbidden",…,"id":…}
 *
 * Which channels a principal may subscribe and publish to is the service's
 * pattern lists, with the rules of STOMP destinations (src/inspect/stomp/
 * destinations.ts). Messages go through the bus (src/bus.ts), so they reach
 * subscribers in every process of a cluster. A binary message closes the
 * connection with 1003, a message that is not a request of the protocol with
 * 1008; a refused request is answered and the connection stays.
 */
import type { Admission } from '../admitted.js';
import type { MessageBus } from '../bus.js';
import type { Channel, ChannelSink } from '../channel.js';
import type { ServiceConfig } from '../config/schema.js';
import type { Audit } from '../observe/audit.js';
import type { Metrics } from '../observe/metrics.js';
import { DestinationPattern } from '../inspect/stomp/destinations.js';
import type { Service, ServiceSession } from './types.js';
import { parseRequest, reply, type PubSubRequest } from './pubsub-protocol.js';

type PubSubConfig = Extract<ServiceConfig, { type: 'pubsub' }>;

export interface PubSubDeps {
  bus: MessageBus;
  audit: Audit;
  metrics: Metrics;
}

/** The bus channel of a service's channel: services never hear each other. */
export function busChannel(service: string, channel: string): string {
  return `${service}|${channel}`;
}

/** The text every subscriber receives, made once per message whatever the number of subscribers. */
export function messageText(channel: string, data: unknown): string {
  return JSON.stringify({ type: 'message', channel, data });
}

export class PubSubService implements Service {
  readonly name: string;
  private readonly subscribable: DestinationPattern[];
  private readonly publishable: DestinationPattern[];

  constructor(readonly config: PubSubConfig, private readonly deps: PubSubDeps) {
    this.name = config.name;
    this.subscribable = config.pubsub.subscribe.map((p) => new DestinationPattern(p));
    this.publishable = config.pubsub.publish.map((p) => new DestinationPattern(p));
  }

  open(admission: Admission): ServiceSession {
    return {
      attach: (channel) => { channel.attach(new PubSubConnection(this, channel, admission, this.deps)); },
      abort: () => undefined,
    };
  }

  may(action: 'subscribe' | 'publish', channel: string, admission: Admission): boolean {
    const patterns = action === 'subscribe' ? this.subscribable : this.publishable;
    return patterns.some((p) => p.matches(channel, admission.principal));
  }
}

class PubSubConnection implements ChannelSink {
  /** channel → its unsubscribe */
  private readonly subscriptions = new Map<string, () => void>();
  private readonly deliver = (text: string): void => {
    if (this.channel.closed) return;
    // Not paused on `false`: the guard's send_buffer (or the fallback's max_buffer) ends a consumer that cannot keep up.
    this.channel.send(text, false);
    this.deps.metrics.inc('gatehouse_pubsub_messages_total', { service: this.service.name, direction: 'delivered' });
  };

  constructor(private readonly service: PubSubService, private readonly channel: Channel, private readonly admission: Admission, private readonly deps: PubSubDeps) {}

  onMessage(data: Buffer, isBinary: boolean): void {
    if (isBinary) { this.violation('pubsub_binary', 1003, 'gatehouse.pubsub.v1 carries text only'); return; }
    const request = parseRequest(data.toString('utf8'));
    if (typeof request === 'string') { this.violation('pubsub_bad_message', 1008, request); return; }
    switch (request.type) {
      case 'subscribe': this.subscribe(request); break;
      case 'unsubscribe': this.unsubscribe(request); break;
      case 'publish': this.publish(request); break;
    }
  }

  onDrain(): void { /* nothing waits: the guard polices slow consumers */ }

  onClose(): void {
    for (const off of this.subscriptions.values()) off();
    this.subscriptions.clear();
  }

  private subscribe(r: PubSubRequest): void {
    if (this.subscriptions.has(r.channel)) { this.answer(reply('subscribed', r)); return; }
    if (!this.service.may('subscribe', r.channel, this.admission)) { this.refuse(r, 'forbidden'); return; }
    if (this.subscriptions.size >= this.service.config.pubsub.max_subscriptions) { this.refuse(r, 'too_many_subscriptions'); return; }
    this.subscriptions.set(r.channel, this.deps.bus.subscribe(busChannel(this.service.name, r.channel), this.deliver));
    this.answer(reply('subscribed', r));
  }

  private unsubscribe(r: PubSubRequest): void {
    this.subscriptions.get(r.channel)?.();
    this.subscriptions.delete(r.channel);
    this.answer(reply('unsubscribed', r));
  }

  private publish(r: PubSubRequest): void {
    if (!this.service.may('publish', r.channel, this.admission)) { this.refuse(r, 'forbidden'); return; }
    this.deps.metrics.inc('gatehouse_pubsub_messages_total', { service: this.service.name, direction: 'published' });
    const sent = this.deps.bus.publish(busChannel(this.service.name, r.channel), messageText(r.channel, r.data));
    if (!(sent instanceof Promise)) { if (r.id !== undefined) this.answer(reply('published', r)); return; }
    sent.then(
      () => { if (r.id !== undefined) this.answer(reply('published', r)); },
      () => this.answer(reply('error', r, 'unavailable')),
    );
  }

  private answer(text: string): void {
    if (!this.channel.closed) this.channel.send(text, false);
  }

  private refuse(r: PubSubRequest, code: 'forbidden' | 'too_many_subscriptions'): void {
    this.deps.metrics.inc('gatehouse_pubsub_refusals_total', { service: this.service.name, reason: code });
    this.deps.audit.refusal(`pubsub_${code}`, {
      service: this.service.name, connection: this.admission.id, principal: this.admission.principal?.id,
      client: this.admission.client.address, command: r.type, destination: r.channel,
    });
    this.answer(reply('error', r, code));
  }

  private violation(reason: string, code: number, message: string): void {
    this.deps.audit.violation(reason, {
      service: this.service.name, connection: this.admission.id, principal: this.admission.principal?.id,
      client: this.admission.client.address, transport: this.channel.transport, code,
    });
    this.channel.close(code, message);
  }
}
