/**
 * How the end of one side is carried to the other: which close code each
 * side gets when its peer across the relay ended.
 */
import type { CloseInfo } from '../channel.js';

/** Close codes a peer may put on the wire (RFC 6455 §7.4, IANA registry). */
export function isSendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/**
 * The code the client gets when the backend ended. A close the backend sent
 * is carried across (1005 "no code" becomes 1000); anything else — the
 * backend vanished, reset, or sent bad data and our codec closed it — is 1014.
 */
export function clientCodeForBackendEnd(info: CloseInfo): { code: number; reason: string } {
  if (info.initiator === 'remote') {
    if (info.code === 1005) return { code: 1000, reason: info.reason };
    if (isSendableCloseCode(info.code)) return { code: info.code, reason: info.reason };
  }
  return { code: 1014, reason: 'bad gateway' };
}

/**
 * The code the backend gets when the client ended: a close the client sent is
 * carried across (1005 → 1000); a client that vanished or was closed by the
 * gateway is "going away", 1001.
 */
export function backendCodeForClientEnd(info: CloseInfo): { code: number; reason: string } {
  if (info.initiator === 'remote') {
    if (info.code === 1005) return { code: 1000, reason: info.reason };
    if (isSendableCloseCode(info.code)) return { code: info.code, reason: info.reason };
  }
  return { code: 1001, reason: 'client gone' };
}
