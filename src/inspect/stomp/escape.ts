/**
 * Header value escaping (STOMP 1.1 and 1.2 "Value Encoding"). 1.0 has none,
 * and CONNECT / STOMP / CONNECTED frames are never escaped in any version
 * (see `escapesHeaders`).
 *
 *   1.1: \n → LF, \c → ":", \\ → "\"
 *   1.2: the same, and \r → CR
 *
 * Any other backslash sequence, or a backslash at the end of a name or value,
 * is a fatal protocol error (1.2) — the gateway refuses it rather than guess
 * what the broker will make of it.
 */
import type { StompVersion } from './frame.js';

/** Unescapes a header name or value. Returns undefined for an undefined escape sequence. */
export function unescapeHeaderText(text: string, version: StompVersion): string | undefined {
  let out = '';
  let from = 0;
  for (let i = text.indexOf('\\'); i !== -1; i = text.indexOf('\\', from)) {
    out += text.slice(from, i);
    const next = text[i + 1];
    if (next === 'n') out += '\n';
    else if (next === 'c') out += ':';
    else if (next === '\\') out += '\\';
    else if (next === 'r' && version === '1.2') out += '\r';
    else return undefined;
    from = i + 2;
  }
  return out + text.slice(from);
}

/**
 * Encodes a header name (`isName`) or value for a frame. Returns undefined when the text
 * cannot be carried: an unescaped frame (1.0, CONNECT, CONNECTED) can hold no
 * LF, CR or NUL; 1.1 cannot carry CR. A gateway-made value (an injected
 * login, say) that could not be carried must never be written raw: a newline
 * in it would start a header of the client's choosing.
 */
export function encodeHeaderText(text: string, escaped: boolean, version: StompVersion, isName = false): string | undefined {
  if (!/[\n\r\0:\\]/.test(text)) return text;
  if (text.includes('\0')) return undefined;
  // Unescaped, a name ends at its first colon; a value may hold colons (split at the first).
  if (!escaped) return /[\n\r]/.test(text) || (isName && text.includes(':')) ? undefined : text;
  if (version !== '1.2' && text.includes('\r')) return undefined;
  return text.replace(/[\\\n\r:]/g, (c) => (c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\c'));
}
