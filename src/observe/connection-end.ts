/**
 * The end of a client connection: one info-level access-log line (service,
 * transport, client address, principal, origin, subprotocol, duration, bytes
 * and messages each way, close code and who closed) and the close counter
 * `gatehouse_closes_total{service, code, closed_by}`. Registered by the
 * composition root as a front-door end hook.
 */
import type { Logger } from 'pino';
import type { Channel, CloseInfo } from '../channel.js';
import { monoClock } from '../clock.js';
import type { Metrics } from './metrics.js';
import type { TrafficReader } from './traffic.js';

/** Who ended it, in the words the log and the metric use. */
const CLOSED_BY: Record<CloseInfo['initiator'], string> = { local: 'gateway', remote: 'client', transport: 'transport' };

/** Close codes as a bounded label: the registered ones as they are, application ranges folded. */
export function closeCodeLabel(code: number): string {
  if (code >= 1000 && code <= 1015) return String(code);
  if (code >= 3000 && code <= 3999) return '3xxx';
  if (code >= 4000 && code <= 4999) return '4xxx';
  return 'other';
}

export class ConnectionEnds {
  constructor(private readonly log: Logger, private readonly metrics: Metrics, private readonly traffic: TrafficReader) {}

  /** For `FrontDoor.addChannelHook(…, ends.ended)`. */
  readonly ended = (channel: Channel, info?: CloseInfo): void => {
    const admission = channel.admission;
    if (admission === undefined) return;
    const service = admission.service.name;
    const closedBy = info ? CLOSED_BY[info.initiator] : 'transport';
    const code = info?.code ?? 1006;
    this.metrics.closes.inc({ service, code: closeCodeLabel(code), closed_by: closedBy });
    if (!this.log.isLevelEnabled('info')) return;
    const t = this.traffic(channel);
    this.log.info({
      event: 'connection.closed',
      connection: admission.id,
      service,
      transport: channel.transport,
      client: admission.client.address,
      principal: admission.principal?.id,
      origin: admission.origin ?? undefined,
      protocol: channel.protocol || undefined,
      duration_ms: t ? monoClock() - t.openedAt : undefined,
      messages_in: t?.messagesIn,
      bytes_in: t?.bytesIn,
      messages_out: t?.messagesOut,
      bytes_out: t?.bytesOut,
      code,
      reason: info?.reason || undefined,
      closed_by: closedBy,
    }, 'connection closed');
  };
}
