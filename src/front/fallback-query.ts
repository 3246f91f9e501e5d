/**
 * The fallback's reserved query parameters — `gh` (the operation), `s` (the
 * session id), `a` (the acknowledgement) — read from a request target once
 * per request. A session request's query is only these, so it is split by
 * hand instead of through URLSearchParams (an object and a map per request);
 * a query with percent-escapes or `+` is left to URLSearchParams, so that
 * every target reads exactly as URLSearchParams#get reads it (the first of
 * each name, after decoding).
 */

/** Reserved query parameter naming the fallback operation. */
export const OP_PARAM = 'gh';

export interface FallbackQuery {
  /** `gh`: open, stream, poll, send (or anything a client made up); null when absent */
  op: string | null;
  /** `s`: the session id */
  session: string | null;
  /** `a`: the client's acknowledgement */
  ack: string | null;
}

export function fallbackQuery(url: string): FallbackQuery {
  const out: FallbackQuery = { op: null, session: null, ack: null };
  const q = url.indexOf('?');
  if (q < 0) return out;
  if (url.includes('%', q) || url.includes('+', q)) {
    const params = new URLSearchParams(url.slice(q + 1));
    out.op = params.get(OP_PARAM);
    out.session = params.get('s');
    out.ack = params.get('a');
    return out;
  }
  // (as URLSearchParams does with a string that starts with '?': one more is dropped)
  let start = url.charCodeAt(q + 1) === 0x3f ? q + 2 : q + 1;
  while (start < url.length) {
    let end = url.indexOf('&', start);
    if (end < 0) end = url.length;
    const eq = url.indexOf('=', start);
    const nameEnd = eq >= 0 && eq < end ? eq : end;
    const value = nameEnd < end ? url.slice(nameEnd + 1, end) : '';
    switch (url.slice(start, nameEnd)) {
      case OP_PARAM: out.op ??= value; break;
      case 's': out.session ??= value; break;
      case 'a': out.ack ??= value; break;
    }
    start = end + 1;
  }
  return out;
}
