/**
 * The Host header: its syntax (RFC 9110 §7.2: RFC 3986 `host [ ":" port ]`)
 * and the name in it without the port, as routes and listener `hosts` compare it.
 */

/**
 * A reg-name (letters, digits, `-._~` and the sub-delims) or an IP literal in
 * brackets, with an optional port: no space, slash, backslash, `@`, `%`, or
 * anything outside ASCII.
 */
const HOST_SYNTAX = /^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9\-._~!$&'()*+,;=]{1,253})(?::[0-9]{1,5})?$/;

export function validHostHeader(host: string): boolean {
  return HOST_SYNTAX.test(host);
}

/** Host header → lowercase host without port or trailing dot (IPv6 keeps its brackets). */
export function hostWithoutPort(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end > 0 ? h.slice(0, end + 1) : h;
  }
  const colon = h.lastIndexOf(':');
  return (colon >= 0 ? h.slice(0, colon) : h).replace(/\.$/, '');
}
