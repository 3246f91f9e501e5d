/**
 * Config keys of the `pubsub` service type: clients subscribe to channels and
 * publish to them over the `gatehouse.pubsub.v1` subprotocol (docs/pubsub.md).
 * Which channels a principal may use are patterns with the rules of STOMP
 * destinations in inspection (docs/inspection.md): segments split at `/` and
 * `.`, `*` one segment, `**` any number, `{principal.id}` and
 * `{claims.NAME}` filled from the verified identity and matched literally.
 */
import { z } from 'zod';
import { parseTemplate } from './placeholders.js';

export const PUBSUB_PROTOCOL = 'gatehouse.pubsub.v1';

const channelPattern = z.string().min(1).max(512).superRefine((p, ctx) => {
  const parsed = parseTemplate(p);
  if ('error' in parsed) { ctx.addIssue({ code: 'custom', message: parsed.error }); return; }
  for (const part of parsed.parts) {
    if (typeof part !== 'string') continue;
    for (const seg of part.split(/[/.]/)) {
      if (seg.includes('*') && seg !== '*' && seg !== '**') {
        ctx.addIssue({ code: 'custom', message: `"${seg}": a wildcard is a whole segment, * or **` });
      }
    }
  }
});

export const pubsubServiceFields = {
  /** The service speaks its own subprotocol, and only that. */
  subprotocols: z.array(z.literal(PUBSUB_PROTOCOL)).min(1).default([PUBSUB_PROTOCOL]),
  require_subprotocol: z.literal(true).default(true),
  pubsub: z.strictObject({
    /** Channels a client may subscribe to. None: no subscriptions. */
    subscribe: z.array(channelPattern).default([]),
    /** Channels a client may publish to. None: clients only listen (backends publish through the admin API). */
    publish: z.array(channelPattern).default([]),
    /** Most channels one connection subscribes to at once. Over → an error reply. */
    max_subscriptions: z.number().int().positive().max(10_000).default(100),
  }).prefault({}),
};
