/**
 * Check 4: read the subprotocols the client offers (Sec-WebSocket-Protocol)
 * into `ctx.offeredProtocols`, with the linear-time token-list parser and hard
 * limits. Runs before authentication so that an authenticator carrying a
 * credential in a subprotocol entry can take it out of the list; the
 * negotiation check later reads only `ctx.offeredProtocols`.
 * Refusals are 400: `subprotocol_too_long` (> 1 KiB), `subprotocol_too_many`
 * (> 16 tokens), `subprotocol_invalid` (not a token list).
 */
import { MAX_SUBPROTOCOL_BYTES, MAX_SUBPROTOCOL_TOKENS } from '../config/policy.js';
import { parseTokenList } from '../http/tokens.js';
import { Rejection, type AdmissionCheck } from './types.js';
import type { CheckFactory } from './checks.js';
import { headerValues } from './headers.js';

const LIMITS = { maxBytes: MAX_SUBPROTOCOL_BYTES, maxTokens: MAX_SUBPROTOCOL_TOKENS };

export const offeredProtocolsCheck: CheckFactory = () => {
  const check: AdmissionCheck = {
    name: 'subprotocol-offer',
    check(ctx) {
      const lines = headerValues(ctx.request.rawHeaders, 'sec-websocket-protocol');
      if (lines.length === 0) {
        ctx.offeredProtocols = [];
        return undefined;
      }
      let bytes = lines.length - 1;
      for (const l of lines) bytes += l.length;
      if (bytes > MAX_SUBPROTOCOL_BYTES) return new Rejection(400, 'subprotocol_too_long', 'Sec-WebSocket-Protocol is too long');
      // Several header lines form one list (RFC 9110 §5.3).
      const parsed = parseTokenList(lines.join(','), LIMITS);
      if (!parsed.ok) {
        return parsed.error === 'too_many'
          ? new Rejection(400, 'subprotocol_too_many', `more than ${MAX_SUBPROTOCOL_TOKENS} subprotocols offered`)
          : parsed.error === 'too_long'
            ? new Rejection(400, 'subprotocol_too_long', 'Sec-WebSocket-Protocol is too long')
            : new Rejection(400, 'subprotocol_invalid', 'Sec-WebSocket-Protocol is not a list of tokens');
      }
      ctx.offeredProtocols = parsed.tokens;
      return undefined;
    },
  };
  return check;
};
