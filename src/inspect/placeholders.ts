/**
 * Filling config placeholders (`{principal.id}`, `{claims.NAME}`; syntax in
 * src/config/placeholders.ts) from a connection's verified identity. Shared by
 * the protocol inspectors (STOMP destinations and CONNECT identity; MQTT topics).
 *
 * A value is text: the principal's id, or a claim that is a string or a
 * finite number. Anything else — no principal, a missing claim, an empty
 * string, an object, an array, a boolean, null — is *absent*, and a pattern
 * with an absent placeholder matches nothing (an identity the gateway did not
 * verify must never widen what a pattern allows). Claims are looked up as own
 * properties only, so `{claims.__proto__}` or `{claims.constructor}` is
 * simply absent.
 *
 * Filled values are literal wherever they land: the pattern matchers compare
 * them character for character and never read `*`, `**`, `+`, `#`, `.` or `/`
 * inside them as pattern syntax.
 */
import type { Placeholder, TemplatePart } from '../config/placeholders.js';

/** What placeholders read: the verified principal (structurally; admission's record has this shape). */
export interface PlaceholderIdentity {
  readonly id: string;
  readonly claims: Readonly<Record<string, unknown>>;
}

/** The text of a placeholder for this identity, or undefined when absent. */
export function placeholderValue(p: Placeholder, identity: PlaceholderIdentity | undefined): string | undefined {
  if (identity === undefined) return undefined;
  if (p.source === 'principal') return identity.id === '' ? undefined : identity.id;
  if (!Object.hasOwn(identity.claims, p.name)) return undefined;
  const v = identity.claims[p.name];
  if (typeof v === 'string') return v === '' ? undefined : v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

/** A template filled in to plain text, or undefined when a placeholder in it is absent. */
export function fillTemplate(parts: readonly TemplatePart[], identity: PlaceholderIdentity | undefined): string | undefined {
  let out = '';
  for (const part of parts) {
    if (typeof part === 'string') {
      out += part;
      continue;
    }
    const value = placeholderValue(part, identity);
    if (value === undefined) return undefined;
    out += value;
  }
  return out;
}
