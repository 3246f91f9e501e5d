/**
 * A linear-time parser for comma-separated token lists (RFC 9110 §5.6.1 `1#token`),
 * as in Sec-WebSocket-Protocol. One pass over the characters, no regular
 * expression with backtracking (the lesson of CVE-2021-32640), hard limits on
 * size and count checked before any work proportional to them.
 */

/** tchar (RFC 9110 §5.6.2) as a 128-entry lookup table (1 = token character). */
export const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) return false;
  }
  return true;
}

export type TokenListResult =
  | { ok: true; tokens: string[] }
  | { ok: false; error: 'too_long' | 'too_many' | 'syntax' | 'duplicate' };

/**
 * Parse `token *( OWS "," OWS token )`. Empty elements (`a,,b`, a leading or
 * trailing comma) are syntax errors and a repeated token is an error: a
 * conforming client sends neither (RFC 6455 §4.1: each value unique).
 */
export function parseTokenList(value: string, limits: { maxBytes: number; maxTokens: number }): TokenListResult {
  if (value.length > limits.maxBytes) return { ok: false, error: 'too_long' };
  const tokens: string[] = [];
  const n = value.length;
  let i = 0;
  for (;;) {
    while (i < n && (value.charCodeAt(i) === 0x20 || value.charCodeAt(i) === 0x09)) i++;
    const start = i;
    while (i < n) {
      const c = value.charCodeAt(i);
      if (c >= 128 || TCHAR[c] === 0) break;
      i++;
    }
    if (i === start) return { ok: false, error: 'syntax' };
    const token = value.slice(start, i);
    if (tokens.includes(token)) return { ok: false, error: 'duplicate' };
    if (tokens.length === limits.maxTokens) return { ok: false, error: 'too_many' };
    tokens.push(token);
    while (i < n && (value.charCodeAt(i) === 0x20 || value.charCodeAt(i) === 0x09)) i++;
    if (i === n) return { ok: true, tokens };
    if (value.charCodeAt(i) !== 0x2c) return { ok: false, error: 'syntax' };
    i++;
  }
}
