/**
 * A service's STOMP policy, compiled once from its `inspect.stomp` config and
 * shared by all its connections: destination patterns, the identity
 * templates of CONNECT, and the limits with their defaults resolved (frame:
 * the service's max_message; body: the frame limit).
 */
import type { StompInspectConfig } from '../../config/inspect.js';
import { parseTemplate, type TemplatePart } from '../../config/placeholders.js';
import { DestinationPattern } from './destinations.js';
import type { StompLimits } from './parser.js';

export interface StompPolicy {
  readonly subscribe: readonly DestinationPattern[];
  readonly send: readonly DestinationPattern[];
  readonly maxSubscriptions: number;
  /** Send an ERROR frame before closing 1008 for a refused frame. */
  readonly errorFrames: boolean;
  /** The identity CONNECT carries to the broker; undefined: the client's own passes. */
  readonly connect?: { readonly login?: TemplatePart[]; readonly passcode?: TemplatePart[]; readonly host?: TemplatePart[] };
  readonly connectTimeout: number;
  readonly minHeartBeat: number;
  readonly limits: StompLimits;
}

const compiled = new WeakMap<StompInspectConfig, StompPolicy>();

/** The policy of `config` (compiled at the first connection, then cached with the config object). */
export function stompPolicy(config: StompInspectConfig, maxMessage: number): StompPolicy {
  let policy = compiled.get(config);
  if (policy === undefined) {
    policy = compile(config, maxMessage);
    compiled.set(config, policy);
  }
  return policy;
}

function template(text: string | undefined): TemplatePart[] | undefined {
  if (text === undefined) return undefined;
  const t = parseTemplate(text);
  if ('error' in t) throw new Error(`bad template ${JSON.stringify(text)}: ${t.error}`);
  return t.parts;
}

function compile(config: StompInspectConfig, maxMessage: number): StompPolicy {
  const maxFrame = config.max_frame ?? maxMessage;
  const c = config.connect;
  return {
    subscribe: config.subscribe.map((p) => new DestinationPattern(p)),
    send: config.send.map((p) => new DestinationPattern(p)),
    maxSubscriptions: config.max_subscriptions,
    errorFrames: config.on_violation === 'error',
    connect: c === undefined ? undefined : { login: template(c.login), passcode: template(c.passcode), host: template(c.host) },
    connectTimeout: config.connect_timeout,
    minHeartBeat: config.min_heart_beat,
    limits: {
      maxFrame,
      maxHeaderLine: config.max_header_line,
      maxHeaders: config.max_headers,
      maxBody: Math.min(config.max_body ?? maxFrame, maxFrame),
    },
  };
}
