/**
 * permessage-deflate (RFC 7692): the negotiation rules, in both roles, and
 * what a negotiated agreement means for one connection's compressor and
 * decompressor. The per-message transform is in deflate-codec.ts, the shared
 * zlib work queue in zlib-pool.ts; every rule of the RFC is named here or
 * there with its section.
 *
 * Server role (§5, §7.1): the client's offers are tried in its order and the
 * first one the gateway can honour is accepted. A handshake never fails
 * because of what it offers (§5: the server declines what it cannot accept;
 * the security catalogue, #64: never 400 because of an offer). The rules:
 *
 * - A header that is not an extension list at all (RFC 6455 §9.1 grammar:
 *   `permessage-deflate; =1`, an unterminated quote), or over 4 KiB or 16
 *   offers, is not read: every offer in it is declined (we cannot tell what
 *   was meant, and a bound is a bound).
 * - A well-formed permessage-deflate offer with an unknown parameter, a
 *   repeated parameter, or an invalid value (`server_max_window_bits=16`,
 *   `=010`, a value on a flag) is DECLINED, as §5 requires of a server
 *   ("MUST decline"): the next offer is tried, and if none is left the
 *   connection opens uncompressed. So is an offer the gateway cannot honour:
 *   `server_max_window_bits=8` (zlib cannot make a raw deflate stream with a
 *   256-byte window), or no `client_max_window_bits` when the service limits
 *   the client's window below 15.
 * - Other extensions are ignored (declined).
 *
 * Client role (a `websocket` backend, §5.1, §7.1): a response naming an
 * extension we did not offer, several extensions, or a permessage-deflate
 * response with an unknown, repeated or invalid parameter, a
 * `server_max_window_bits` above what we asked, or a `client_max_window_bits`
 * we did not offer, fails the backend handshake (502 `backend_bad_extension`,
 * RFC 6455 §4.1: the client MUST fail the connection).
 *
 * Either side may always send a message uncompressed, and may always start a
 * message with an empty context: that is how the gateway keeps no zlib state
 * per idle connection by default (see CompressionSettings).
 */
import type { CompressionSettings } from '../config/compression.js';
import { HandshakeError } from './handshake.js';
import { formatExtension, parseExtensionList, type ExtensionElement, type ExtensionParam } from './extension-header.js';

export const EXTENSION_NAME = 'permessage-deflate';

/** Limits on the request's Sec-WebSocket-Extensions (a browser sends one or two short offers). */
export const MAX_EXTENSIONS_BYTES = 4096;
export const MAX_EXTENSION_OFFERS = 16;
const MAX_PARAMS = 8;

/** What one connection agreed (§7.1), in the RFC's terms: "server" and "client" are the roles. */
export interface DeflateAgreement {
  /** The server starts every message with an empty LZ77 window (§7.1.1.1). */
  readonly serverNoContextTakeover: boolean;
  /** The client starts every message with an empty LZ77 window (§7.1.1.2). */
  readonly clientNoContextTakeover: boolean;
  /** The server compresses with at most this many window bits (§7.1.2.1), 8–15. */
  readonly serverMaxWindowBits: number;
  /** The client compresses with at most this many window bits (§7.1.2.2), 8–15. */
  readonly clientMaxWindowBits: number;
}

/**
 * One agreement seen from one end: how this end compresses what it sends and
 * decompresses what it receives. Shared by every connection with the same
 * agreement and settings (memory per idle connection counts).
 */
export interface DeflateOptions {
  readonly agreement: DeflateAgreement;
  /** The Sec-WebSocket-Extensions value that was sent (server) or received (client). */
  readonly header: string;
  /** false: what this end sends is never compressed (the peer asked for a window zlib cannot make). */
  readonly compressOutgoing: boolean;
  /** Messages shorter than this are sent uncompressed. */
  readonly threshold: number;
  readonly level: number;
  readonly memLevel: number;
  /** Window bits of this end's compressor. */
  readonly deflateWindowBits: number;
  /** Keep the compressor between messages (context takeover on this end's side). */
  readonly keepDeflater: boolean;
  /** Window bits of this end's decompressor (at least 9: zlib's smallest raw window, big enough for 8). */
  readonly inflateWindowBits: number;
  /** The peer may refer to earlier messages: the decompressor is kept between messages. */
  readonly keepInflater: boolean;
}

/** A permessage-deflate offer's or response's parameters, validated (§7.1), or null when they are not acceptable. */
interface DeflateParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits?: number;
  /** `true`: present without a value. */
  clientMaxWindowBits?: number | true;
}

/** §7.1.2.1/§7.1.2.2: a decimal integer 8–15 without leading zeros. */
function windowBitsValue(v: string | true): number | undefined {
  if (v === true || !/^(?:8|9|1[0-5])$/.test(v)) return undefined;
  return Number(v);
}

/** §7: the four parameters, each at most once, with valid values; anything else makes the element unacceptable. */
function readParams(params: ExtensionParam[], role: 'offer' | 'response'): DeflateParams | null {
  const out: DeflateParams = { serverNoContextTakeover: false, clientNoContextTakeover: false };
  const seen = new Set<string>();
  for (const p of params) {
    if (seen.has(p.name)) return null; // §5: multiple parameters with the same name
    seen.add(p.name);
    switch (p.name) {
      case 'server_no_context_takeover':
      case 'client_no_context_takeover':
        if (p.value !== true) return null; // §7.1.1: no value
        if (p.name === 'server_no_context_takeover') out.serverNoContextTakeover = true;
        else out.clientNoContextTakeover = true;
        break;
      case 'server_max_window_bits': {
        const bits = windowBitsValue(p.value); // §7.1.2.1: a value is required
        if (bits === undefined) return null;
        out.serverMaxWindowBits = bits;
        break;
      }
      case 'client_max_window_bits': {
        // §7.1.2.2: optional value in an offer, required in a response.
        if (p.value === true && role === 'offer') { out.clientMaxWindowBits = true; break; }
        const bits = windowBitsValue(p.value);
        if (bits === undefined) return null;
        out.clientMaxWindowBits = bits;
        break;
      }
      default:
        return null; // §5: a parameter not defined for this extension
    }
  }
  return out;
}

const optionsCache = new Map<string, DeflateOptions>();

/** The shared options object for an agreement seen from `role`, with the local compression settings. */
function optionsFor(agreement: DeflateAgreement, role: 'server' | 'client', settings: CompressionSettings, header: string): DeflateOptions {
  const key = `${role}|${header}|${settings.threshold}|${settings.level}|${settings.mem_level}|${settings.server_no_context_takeover}|${settings.client_no_context_takeover}`;
  let o = optionsCache.get(key);
  if (o !== undefined) return o;
  const server = role === 'server';
  const sendBits = server ? agreement.serverMaxWindowBits : agreement.clientMaxWindowBits;
  const sendNoTakeover = server ? agreement.serverNoContextTakeover : agreement.clientNoContextTakeover;
  const recvBits = server ? agreement.clientMaxWindowBits : agreement.serverMaxWindowBits;
  const recvNoTakeover = server ? agreement.clientNoContextTakeover : agreement.serverNoContextTakeover;
  o = Object.freeze({
    agreement,
    header,
    // zlib turns a raw 8-bit window into 9, which a peer that asked for 8 may not decode.
    compressOutgoing: sendBits >= 9,
    threshold: settings.threshold,
    level: settings.level,
    memLevel: settings.mem_level,
    deflateWindowBits: sendBits,
    // Our own side may always start afresh; it keeps its context only when allowed and asked to.
    keepDeflater: !sendNoTakeover && !settings.server_no_context_takeover,
    inflateWindowBits: Math.max(9, recvBits),
    keepInflater: !recvNoTakeover,
  });
  // Bounded: agreements are a handful of combinations per service.
  if (optionsCache.size < 1024) optionsCache.set(key, o);
  return o;
}

/**
 * Server role: choose among the client's offers (Sec-WebSocket-Extensions of
 * the request, several lines already joined). Returns null when compression
 * is not used: no offer, none acceptable, or a header that cannot be read.
 */
export function negotiateDeflate(header: string | undefined, settings: CompressionSettings): DeflateOptions | null {
  if (header === undefined) return null;
  const parsed = parseExtensionList(header, { maxBytes: MAX_EXTENSIONS_BYTES, maxElements: MAX_EXTENSION_OFFERS, maxParams: MAX_PARAMS });
  if (!parsed.ok) return null;
  for (const element of parsed.elements) {
    if (element.name !== EXTENSION_NAME) continue;
    const offer = readParams(element.params, 'offer');
    if (offer === null) continue; // §5: declined, try the next offer
    const accepted = acceptOffer(offer, settings);
    if (accepted === null) continue;
    return optionsFor(accepted.agreement, 'server', settings, formatExtension(accepted.response));
  }
  return null;
}

/** §7.1: the response to one valid offer, or null when the gateway cannot honour it. */
function acceptOffer(offer: DeflateParams, settings: CompressionSettings): { agreement: DeflateAgreement; response: ExtensionElement } | null {
  const params: ExtensionParam[] = [];
  // §7.1.1.1: a client's server_no_context_takeover must be honoured; we may also say it on our own.
  const serverNoContextTakeover = offer.serverNoContextTakeover || settings.server_no_context_takeover;
  if (serverNoContextTakeover) params.push({ name: 'server_no_context_takeover', value: true });
  // §7.1.1.2: the server may always ask the client not to take over context.
  const clientNoContextTakeover = offer.clientNoContextTakeover || settings.client_no_context_takeover;
  if (clientNoContextTakeover) params.push({ name: 'client_no_context_takeover', value: true });

  // §7.1.2.1: answer a client's limit with the same or a smaller value; without one, we may announce ours.
  let serverBits = settings.server_max_window_bits;
  if (offer.serverMaxWindowBits !== undefined) {
    if (offer.serverMaxWindowBits < 9) return null; // zlib cannot compress with a 256-byte raw window
    serverBits = Math.min(serverBits, offer.serverMaxWindowBits);
    params.push({ name: 'server_max_window_bits', value: String(serverBits) });
  } else if (serverBits < 15) {
    params.push({ name: 'server_max_window_bits', value: String(serverBits) });
  }

  // §7.1.2.2: the client's window can only be limited if it offered the parameter (a value is its own promise).
  let clientBits: number;
  if (offer.clientMaxWindowBits === undefined) {
    if (settings.client_max_window_bits < 15) return null; // it would use 15, more than the service allows
    clientBits = 15;
  } else {
    const promised = offer.clientMaxWindowBits === true ? 15 : offer.clientMaxWindowBits;
    clientBits = Math.min(promised, settings.client_max_window_bits);
    if (clientBits < 15) params.push({ name: 'client_max_window_bits', value: String(clientBits) });
  }

  const agreement: DeflateAgreement = Object.freeze({
    serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits: serverBits, clientMaxWindowBits: clientBits,
  });
  return { agreement, response: { name: EXTENSION_NAME, params } };
}

/** What the gateway, in client role, offers a backend and then holds the response to. */
export interface DeflateClientOffer {
  readonly header: string;
  readonly params: DeflateParams;
  /** A second offer asking nothing of the backend's own compressor, for a backend that refuses the first (see `backendOffer`). */
  readonly fallback?: DeflateParams;
  readonly settings: CompressionSettings;
}

/**
 * Client role: the offer to a `websocket` backend for a client connection
 * that agreed `clientLeg`. It asks the backend for no more than the client
 * accepts (window, context takeover) and promises no more than the client
 * does, so that compressed frames can pass between them untouched when the
 * backend agrees (see `passthroughCompatibility`).
 */
export function backendOffer(clientLeg: DeflateOptions, settings: CompressionSettings): DeflateClientOffer {
  const a = clientLeg.agreement;
  const params: ExtensionParam[] = [];
  const offer: DeflateParams = { serverNoContextTakeover: a.serverNoContextTakeover, clientNoContextTakeover: a.clientNoContextTakeover };
  if (a.serverNoContextTakeover) params.push({ name: 'server_no_context_takeover', value: true });
  if (a.clientNoContextTakeover) params.push({ name: 'client_no_context_takeover', value: true });
  if (a.serverMaxWindowBits < 15) {
    offer.serverMaxWindowBits = a.serverMaxWindowBits;
    params.push({ name: 'server_max_window_bits', value: String(a.serverMaxWindowBits) });
  }
  offer.clientMaxWindowBits = a.clientMaxWindowBits < 15 ? a.clientMaxWindowBits : true;
  params.push({ name: 'client_max_window_bits', value: a.clientMaxWindowBits < 15 ? String(a.clientMaxWindowBits) : true });
  const header = formatExtension({ name: EXTENSION_NAME, params });
  // A server may refuse what the first offer asks of its compressor (ws with
  // serverNoContextTakeover: false answers 400 to server_no_context_takeover),
  // or a window it will not promise (ws's clientMaxWindowBits above ours).
  // The second asks nothing and promises no smaller window: accepted, the
  // directions that no longer fit are compressed again by the gateway.
  if (!a.serverNoContextTakeover && a.serverMaxWindowBits === 15 && a.clientMaxWindowBits === 15) {
    return Object.freeze({ header, params: offer, settings });
  }
  const fallbackParams: ExtensionParam[] = [];
  if (a.clientNoContextTakeover) fallbackParams.push({ name: 'client_no_context_takeover', value: true });
  fallbackParams.push({ name: 'client_max_window_bits', value: true });
  const fallback: DeflateParams = { serverNoContextTakeover: false, clientNoContextTakeover: a.clientNoContextTakeover, clientMaxWindowBits: true };
  return Object.freeze({ header: `${header}, ${formatExtension({ name: EXTENSION_NAME, params: fallbackParams })}`, params: offer, fallback, settings });
}

/**
 * Client role: check the backend's Sec-WebSocket-Extensions against our offer
 * (§5.1, §7.1). Returns null when the backend declined; throws HandshakeError
 * (502 `backend_bad_extension`) for anything we did not offer or allow.
 */
export function acceptDeflateResponse(header: string | undefined, offer: DeflateClientOffer | undefined): DeflateOptions | null {
  if (header === undefined || header.trim() === '') return null;
  const bad = (why: string): HandshakeError => new HandshakeError(502, 'backend_bad_extension', `backend extensions: ${why}`);
  if (offer === undefined) throw bad('an extension we did not offer');
  const parsed = parseExtensionList(header, { maxBytes: MAX_EXTENSIONS_BYTES, maxElements: 2, maxParams: MAX_PARAMS });
  if (!parsed.ok) throw bad('malformed header');
  if (parsed.elements.length !== 1 || parsed.elements[0].name !== EXTENSION_NAME) throw bad('an extension we did not offer');
  const r = readParams(parsed.elements[0].params, 'response');
  if (r === null) throw bad('an unknown, repeated or invalid permessage-deflate parameter');
  // The response accepts one of our offers (§5.1): the first it fits.
  let o = offer.params;
  let why = responseMismatch(r, o);
  if (why !== null && offer.fallback !== undefined && responseMismatch(r, offer.fallback) === null) {
    o = offer.fallback;
    why = null;
  }
  if (why !== null) throw bad(why);
  const promised = typeof o.clientMaxWindowBits === 'number' ? o.clientMaxWindowBits : 15;
  const agreement: DeflateAgreement = Object.freeze({
    serverNoContextTakeover: r.serverNoContextTakeover,
    clientNoContextTakeover: r.clientNoContextTakeover || o.clientNoContextTakeover,
    serverMaxWindowBits: r.serverMaxWindowBits ?? 15,
    clientMaxWindowBits: Math.min(promised, typeof r.clientMaxWindowBits === 'number' ? r.clientMaxWindowBits : 15),
  });
  return optionsFor(agreement, 'client', offer.settings, formatExtension(parsed.elements[0]));
}

/** Why a response cannot be the acceptance of offer `o` (§7.1), or null when it can. */
function responseMismatch(r: DeflateParams, o: DeflateParams): string | null {
  // §7.1.1.1: a server that accepts server_no_context_takeover says so.
  if (o.serverNoContextTakeover && !r.serverNoContextTakeover) return 'server_no_context_takeover not confirmed';
  // §7.1.2.1: the same or a smaller value than asked.
  if (o.serverMaxWindowBits !== undefined && (r.serverMaxWindowBits === undefined || r.serverMaxWindowBits > o.serverMaxWindowBits)) {
    return 'server_max_window_bits above what we asked';
  }
  // §7.1.2.2: only if we offered it.
  if (r.clientMaxWindowBits !== undefined && o.clientMaxWindowBits === undefined) return 'client_max_window_bits we did not offer';
  return null;
}

/**
 * Whether a relay may pass compressed frames between a client connection
 * (server role, `clientLeg`) and a backend connection (client role,
 * `backendLeg`) without decompressing and compressing again, per direction.
 * A frame compressed by one peer can be decompressed by the other when its
 * window fits the other's decompressor and the other does not expect a
 * context the sender may not keep (§7.1.1, §7.1.2).
 */
export function passthroughCompatibility(clientLeg: DeflateOptions, backendLeg: DeflateOptions): { toBackend: boolean; toClient: boolean } {
  const c = clientLeg.agreement;
  const b = backendLeg.agreement;
  return {
    // The client compresses for the backend's decompressor (client_* of both agreements).
    toBackend: c.clientMaxWindowBits <= b.clientMaxWindowBits && (!b.clientNoContextTakeover || c.clientNoContextTakeover),
    // The backend compresses for the client's decompressor (server_* of both agreements).
    toClient: b.serverMaxWindowBits <= c.serverMaxWindowBits && (!c.serverNoContextTakeover || b.serverNoContextTakeover),
  };
}
