/**
 * Checks of a request head that need no service, in order, for both the
 * upgrade and plain HTTP requests (the fallback). Node's parser has already
 * enforced the total head size (`header_bytes`, 431) and the head timeout; it
 * has no limit of its own on one line, so a 12 KiB query string or header
 * value would pass as long as the whole head fits.
 *
 *   header lines   over `header_count`                      431 too_many_headers
 *   request line   over `request_line_bytes`                414 request_line_too_large
 *   one header     a line over `header_line_bytes`          431 header_line_too_large
 *   Host syntax    not `host[:port]` (RFC 9110 §7.2)        400 bad_host
 *   listener hosts not one of the listener's `hosts`        421 unknown_host
 */
import type { IncomingMessage } from 'node:http';
import type { LimitsConfig } from '../config/limits.js';
import { hostWithoutPort, validHostHeader } from '../http/host.js';

export interface HeadRefusal { status: number; reason: string }

/** `HTTP/1.1` and the two spaces of a request line, around the method and target. */
const REQUEST_LINE_OVERHEAD = 10;
/** `: ` between a header's name and value. */
const HEADER_SEPARATOR = 2;

/**
 * The first check the head fails, or undefined. `hosts`: the listener's host
 * names (lower case, no port), undefined when it answers any.
 */
export function checkRequestHead(req: IncomingMessage, limits: LimitsConfig, hosts: ReadonlySet<string> | undefined): HeadRefusal | undefined {
  const raw = req.rawHeaders;
  if (raw.length / 2 > limits.header_count) return { status: 431, reason: 'too_many_headers' };
  const lineBytes = (req.method?.length ?? 0) + (req.url?.length ?? 0) + REQUEST_LINE_OVERHEAD;
  if (lineBytes > limits.request_line_bytes) return { status: 414, reason: 'request_line_too_large' };
  const maxLine = limits.header_line_bytes;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i].length + HEADER_SEPARATOR + raw[i + 1].length > maxLine) return { status: 431, reason: 'header_line_too_large' };
  }
  const host = req.headers.host;
  // Node refuses a request without Host itself (requireHostHeader); a second Host line is the handshake rules' (bad_host).
  if (host !== undefined && !validHostHeader(host)) return { status: 400, reason: 'bad_host' };
  if (hosts !== undefined && host !== undefined && !hosts.has(hostWithoutPort(host))) return { status: 421, reason: 'unknown_host' };
  return undefined;
}
