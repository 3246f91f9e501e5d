/** Our RFC 6455 engine. */
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
