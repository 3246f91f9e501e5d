/**
 * Check 4: read the subprotocols the client offers (Sec-WebSocket-Protocol)
 * into `ctx.offeredProtocols`, with the linear-time token-list parser and hard
 * limits. Runs before authentication so that an authenticator carrying a
 * credential in a subprotocol entry can take it out of the list; the
 * negotiation check later reads only `ctx.offeredProtocols`.
 * Refusals are 400 with the same reason codes as the WebSocket codec's own
 * handshake check (so both transports report alike): `subprotocol_limit`
 * (> 1 KiB or > 16 tokens), `invalid_subprotocol` (not a token list),
 * `duplicate_subprotocol`.
 */
import { MAX_SUBPROTOCOL_BYTES, MAX_SUBPROTOCOL_TOKENS } from '../config/policy.js';
import { parseTokenList } from '../http/tokens.js';
import { Rejection, type AdmissionCheck, type CheckFactory } from './types.js';
import { headerValues } from './headers.js';

const LIMITS = { maxBytes: MAX_SUBPROTOCOL_BYTES, maxTokens: MAX_SUBPROTOCOL_TOKENS };

export const offeredProtocolsCheck: CheckFactory = () => {
  const check: AdmissionCheck = {
    name: 'subprotocol-offer',
    check(ctx) {
      const parsed = ctx.request.offeredProtocols;
      if (parsed !== undefined) {
        // The transport parsed the header already (same grammar and limits, refused before admission).
        ctx.offeredProtocols = parsed.slice();
        return undefined;
      }
      const lines = headerValues(ctx.request.rawHeaders, 'sec-websocket-protocol');
      if (lines.length === 0) {
        ctx.offeredProtocols = [];
        return undefined;
      }
      let bytes = lines.length - 1;
      for (const l of lines) bytes += l.length;
      if (bytes > MAX_SUBPROTOCOL_BYTES) return new Rejection(400, 'subprotocol_limit', 'Sec-WebSocket-Protocol is too long');
      // Several header lines form one list (RFC 9110 §5.3).
      const list = parseTokenList(lines.join(','), LIMITS);
      if (!list.ok) {
        switch (list.error) {
          case 'too_many': return new Rejection(400, 'subprotocol_limit', `more than ${MAX_SUBPROTOCOL_TOKENS} subprotocols offered`);
          case 'too_long': return new Rejection(400, 'subprotocol_limit', 'Sec-WebSocket-Protocol is too long');
          case 'duplicate': return new Rejection(400, 'duplicate_subprotocol', 'a subprotocol is offered twice');
          default: return new Rejection(400, 'invalid_subprotocol', 'Sec-WebSocket-Protocol is not a list of tokens');
        }
      }
      ctx.offeredProtocols = list.tokens;
      return undefined;
    },
  };
  return check;
};
