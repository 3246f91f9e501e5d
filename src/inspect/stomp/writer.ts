/**
 * Writes STOMP frames: the gateway's own (ERROR to a client) and the frames it
 * rewrites (CONNECT with the identity it injects, SEND without a stripped
 * header). Header names and values are escaped for the frame's version
 * (escape.ts); text that the frame cannot carry makes the write fail rather
 * than produce a frame the peer would read differently.
 */
import { escapesHeaders, type StompVersion } from './frame.js';
import { encodeHeaderText } from './escape.js';

/**
 * The bytes of a frame, or undefined when a header cannot be carried.
 * `headers` is flat: name, value, name, value, ... The body goes as given: a
 * body that may hold NUL needs a `content-length` header among `headers`.
 */
export function writeFrame(command: string, headers: readonly string[], body: Buffer | string, version: StompVersion): Buffer | undefined {
  const escaped = escapesHeaders(command, version);
  let head = command + '\n';
  for (let i = 0; i < headers.length; i += 2) {
    const name = encodeHeaderText(headers[i], escaped, version, true);
    const value = encodeHeaderText(headers[i + 1], escaped, version);
    if (name === undefined || value === undefined || name === '') return undefined;
    head += name + ':' + value + '\n';
  }
  head += '\n';
  const headLength = Buffer.byteLength(head);
  const bodyLength = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  const out = Buffer.allocUnsafe(headLength + bodyLength + 1);
  out.write(head, 0, 'utf8');
  if (typeof body === 'string') out.write(body, headLength, 'utf8');
  else body.copy(out, headLength);
  out[headLength + bodyLength] = 0;
  return out;
}
