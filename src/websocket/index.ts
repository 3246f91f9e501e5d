/**
 * Our RFC 6455 engine (server and client role).
 *
 *   handshake.ts     opening handshake checks (§4.2.1) and the client side (§4.1)
 *   frame-parser.ts  streaming parser: every §5 rule, limits from the header,
 *                    zero-copy payload, incremental UTF-8 (utf8.ts), any chopping
 *   frame-writer.ts  header encoding, one-write small frames, writev large ones,
 *                    fresh mask per client frame (mask.ts)
 *   connection.ts    the Channel: ping/pong, close handshake, backpressure, timers
 *   heartbeat.ts     one shared coarse scheduler for every per-connection deadline
 *   client.ts        connectWebSocket (ws:// and wss:// backends)
 *
 * Decisions: non-minimal length encodings are accepted; input after a Close is
 * ignored; fragments count toward maxFragments even when empty; a text piece is
 * delivered only once validated, so only valid UTF-8 prefixes ever leave the parser.
 */
export * from './constants.js';
export { Utf8Validator, isValidUtf8 } from './utf8.js';
export { applyMask, remask, randomMask } from './mask.js';
export { FrameParser, type FrameParserOptions, type FrameParserHandler } from './frame-parser.js';
export { FrameWriter, encodeHeader, encodeClosePayload, SMALL_FRAME } from './frame-writer.js';
export {
  HandshakeError, validateUpgradeRequest, parseSubprotocols, acceptKey, buildUpgradeResponse, generateKey,
  buildClientRequest, validateServerResponse, type UpgradeRequestLike, type UpgradeRequestInfo,
} from './handshake.js';
export { Heartbeat, heartbeat, type HeartbeatMember } from './heartbeat.js';
export { WebSocketConnection, type ConnectionOptions } from './connection.js';
export { connectWebSocket, parseResponseHead, MAX_RESPONSE_HEAD, type ConnectOptions } from './client.js';
