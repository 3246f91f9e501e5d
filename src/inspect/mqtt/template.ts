/**
 * The values of policy placeholders for a principal: the id, or a claim as
 * text (a string or a finite number); anything else is absent.
 */
import type { Principal } from '../../admitted.js';
import { splitTemplate, type Placeholder } from '../../config/placeholders.js';

export { splitTemplate };

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
