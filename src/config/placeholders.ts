/**
 * Placeholders in config strings: `{principal.id}` and `{claims.NAME}`, filled
 * per connection from the verified identity (src/inspect/placeholders.ts) —
 * in destination and topic patterns, and in the identity an inspector hands
 * the broker.
 *
 * Braces without `$`, so they never meet the loader's `${VAR}` environment
 * substitution, which runs first and leaves them alone. Every `{` opens a
 * placeholder: an unknown one is a config error (a typo must not become
 * literal text that quietly matches nothing), as is `${principal.id}`,
 * which is almost certainly meant as `{principal.id}`.
 */

/** The verified principal's id, or one of its claims (top-level, by exact name). */
export type Placeholder = { readonly source: 'principal' } | { readonly source: 'claim'; readonly name: string };

/** Literal text and placeholders, in order; literal runs are never empty and never adjacent. */
export type TemplatePart = string | Placeholder;

export type TemplateResult = { readonly parts: TemplatePart[] } | { readonly error: string };

const PRINCIPAL: Placeholder = Object.freeze({ source: 'principal' });

export function parseTemplate(text: string): TemplateResult {
  const parts: TemplatePart[] = [];
  let from = 0;
  for (let open = text.indexOf('{'); open !== -1; open = text.indexOf('{', from)) {
    const close = text.indexOf('}', open);
    if (close === -1) return { error: `unclosed "{" at ${open}: placeholders are {principal.id} and {claims.NAME}` };
    const inner = text.slice(open + 1, close);
    let placeholder: Placeholder;
    if (inner === 'principal.id') placeholder = PRINCIPAL;
    else if (inner.startsWith('claims.') && inner.length > 'claims.'.length && !inner.includes('{')) placeholder = { source: 'claim', name: inner.slice('claims.'.length) };
    else return { error: `unknown placeholder {${inner}}: placeholders are {principal.id} and {claims.NAME}` };
    if (open > 0 && text[open - 1] === '$') return { error: `\${${inner}} is environment substitution; write the placeholder without "$": {${inner}}` };
    if (open > from) parts.push(text.slice(from, open));
    parts.push(placeholder);
    from = close + 1;
  }
  if (from < text.length) parts.push(text.slice(from));
  return { parts };
}

/** The placeholder as written in config, for messages. */
export function placeholderText(p: Placeholder): string {
  return p.source === 'principal' ? '{principal.id}' : `{claims.${p.name}}`;
}
