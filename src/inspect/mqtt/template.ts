/**
 * Placeholders in MQTT policy values: `{principal.id}` and `{claims.NAME}`.
 * A value is the principal's id or the claim as text (a string or a finite
 * number); anything else is absent.
 *
 * Interim: the shared placeholder module of the STOMP inspector (issue 13)
 * replaces this file when it lands.
 */
import type { Principal } from '../../admitted.js';

export type Placeholder = { kind: 'id' } | { kind: 'claim'; name: string };
export type TemplatePiece = string | Placeholder;

const PLACEHOLDER = /\{(principal\.id|claims\.([A-Za-z0-9_:.-]+))\}/g;

/** Literal text and placeholders, in order. */
export function splitTemplate(template: string): TemplatePiece[] {
  const pieces: TemplatePiece[] = [];
  let last = 0;
  for (const m of template.matchAll(PLACEHOLDER)) {
    if (m.index > last) pieces.push(template.slice(last, m.index));
    pieces.push(m[2] === undefined ? { kind: 'id' } : { kind: 'claim', name: m[2] });
    last = m.index + m[0].length;
  }
  if (last < template.length) pieces.push(template.slice(last));
  return pieces;
}

export function placeholderValue(p: Placeholder, principal: Principal | undefined): string | undefined {
  if (!principal) return undefined;
  if (p.kind === 'id') return principal.id;
  if (!Object.hasOwn(principal.claims, p.name)) return undefined;
  const v = principal.claims[p.name];
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

/** Expand a template into text; undefined when a placeholder has no value. */
export function expandTemplate(template: string, principal: Principal | undefined): string | undefined {
  let out = '';
  for (const piece of splitTemplate(template)) {
    if (typeof piece === 'string') { out += piece; continue; }
    const v = placeholderValue(piece, principal);
    if (v === undefined) return undefined;
    out += v;
  }
  return out;
}
