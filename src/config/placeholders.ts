/**
 * The grammar of placeholders in inspector policies: `{principal.id}` and
 * `{claims.NAME}` — braces without `$`, so the loader's `${VAR}`
 * substitution never touches them. Pure text functions: the values are put
 * in by the inspectors, per connection.
 */
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

/** A problem with a template's placeholders, or undefined. */
export function templateProblem(template: string): string | undefined {
  const rest = template.replace(PLACEHOLDER, '');
  if (rest.includes('{') || rest.includes('}')) return 'placeholders are {principal.id} or {claims.NAME}';
  return undefined;
}
