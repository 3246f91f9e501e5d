/**
 * The ordered list of admission checks, composed here from admission's and
 * auth's checks: this file stands above both, so neither imports the other's
 * list (the check contract, `CheckFactory`, is in `admission/types.ts`). The
 * gateway hands the list to the pipeline.
 *
 * Order matters and is the security model: cheap refusals first, nothing that
 * costs a backend or an outbound call before origin and rate limits have passed.
 */
import type { CheckFactory } from './admission/types.js';
import { handshakeRateCheck } from './admission/handshake-rate.js';
import { connectionLimitCheck } from './admission/connection-limit.js';
import { originCheck } from './admission/origin.js';
import { offeredProtocolsCheck } from './admission/offered-protocols.js';
import { subprotocolCheck } from './admission/subprotocol.js';
import { authenticateCheck } from './auth/authenticate.js';
import { authorizeCheck } from './auth/authorize.js';

export const CHECK_FACTORIES: CheckFactory[] = [
  // 1. request sanity and rate limits
  handshakeRateCheck,
  connectionLimitCheck,
  // 2. origin (RFC 6454)
  originCheck,
  // offered subprotocols parsed (400 on junk) before authentication may remove credential carriers
  offeredProtocolsCheck,
  // 3. authentication
  authenticateCheck,
  // 4. authorization
  authorizeCheck,
  // 5. subprotocol negotiation
  subprotocolCheck,
];

/**
 * The checks a request for a ticket passes before its caller is authenticated
 * (which costs what a handshake's authentication costs): the same rate and
 * connection limits, the slot held until the answer is sent.
 */
export const TICKET_DOOR_CHECKS: CheckFactory[] = [handshakeRateCheck, connectionLimitCheck];

/**
 * The checks a live fallback session's request passes again when its
 * credential-bearing headers changed (a refreshed or an unrelated new cookie):
 * every check of `factories` but the door's counters. The session already
 * holds its connection slot and a new cookie is no new connection — counting
 * again refused the session's own poll (503 with `max_connections: 1`).
 * Computed from the list as it is when the pipeline is built.
 */
export function credentialChecks(factories: readonly CheckFactory[] = CHECK_FACTORIES): CheckFactory[] {
  return factories.filter((f) => !TICKET_DOOR_CHECKS.includes(f));
}
