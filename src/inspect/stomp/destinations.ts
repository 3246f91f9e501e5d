/**
 * STOMP destination patterns: which destinations a connection may SUBSCRIBE
 * or SEND to (syntax checked by the config: src/config/inspect.ts).
 *
 * - A destination is split into segments by `/` and `.`.
 * - `*` matches exactly one segment, not empty.
 * - `**` matches any number of segments, none included: `/topic/**` matches
 *   `/topic`, `/topic/a` and `/topic/a.b/c`, not `/topicx`; a leading `**`
 *   (or `**` alone) matches anything.
 * - Everything else is literal, compared character for character, and so is
 *   every value filled in from the identity ({principal.id}, {claims.NAME}):
 *   a user whose id is `*` or `a.b` matches `…user.*` or `…user.a.b` and
 *   nothing else. A pattern whose placeholder is absent matches nothing.
 *
 * Broker wildcards in the destination a client sends (RabbitMQ's `*` and
 * `#`, ActiveMQ's `*` and `>` — whole segments, on topics a SUBSCRIBE with
 * them receives what many destinations get) can only be allowed by pattern
 * wildcards at least as wide: a `*` segment by `*` or `**`, a `#` or `>`
 * segment by `**` alone. Literal text never matches them — not even a filled
 * value that happens to be `*`: otherwise the user whose id is `*` would
 * subscribe to `/topic/user.*` and read every user's messages.
 */
import { parseTemplate, type Placeholder, type TemplatePart } from '../../config/placeholders.js';
import { placeholderValue, type PlaceholderIdentity } from '../placeholders.js';

type Token =
  | { readonly kind: 'text'; readonly text: string; readonly mayCoverWildcard: boolean }
  | { readonly kind: 'fill'; readonly parts: readonly TemplatePart[] }
  | { readonly kind: 'star' }
  | { readonly kind: 'globstar'; readonly sep: string | null };

const SLASH = 0x2f;
const DOT = 0x2e;

function isSep(code: number): boolean {
  return code === SLASH || code === DOT;
}

/** A whole segment [i, i + 1) of `d` that a broker reads as a wildcard. */
function isWildcardSegmentAt(d: string, i: number): boolean {
  const c = d.charCodeAt(i);
  if (c !== 0x2a && c !== 0x23 && c !== 0x3e) return false; // * # >
  return (i === 0 || isSep(d.charCodeAt(i - 1))) && (i + 1 === d.length || isSep(d.charCodeAt(i + 1)));
}

export class DestinationPattern {
  private readonly tokens: readonly Token[];
  private readonly globstars: number;

  /** `source` must have passed the config's check (src/config/inspect.ts); throws otherwise. */
  constructor(readonly source: string) {
    const parsed = parseTemplate(source);
    if ('error' in parsed) throw new Error(`bad destination pattern ${JSON.stringify(source)}: ${parsed.error}`);
    this.tokens = compile(parsed.parts);
    this.globstars = this.tokens.filter((t) => t.kind === 'globstar').length;
  }

  matches(destination: string, identity: PlaceholderIdentity | undefined): boolean {
    const resolved = this.resolve(identity);
    if (resolved === undefined) return false;
    const failed = this.globstars > 1 ? new Set<number>() : undefined;
    return matchFrom(resolved, 0, destination, 0, failed);
  }

  /** Tokens with filled placeholders as text; undefined when one is absent. */
  private resolve(identity: PlaceholderIdentity | undefined): readonly Token[] | undefined {
    let out: Token[] | undefined;
    for (let i = 0; i < this.tokens.length; i++) {
      const t = this.tokens[i];
      if (t.kind !== 'fill') {
        out?.push(t);
        continue;
      }
      let text = '';
      for (const p of t.parts) {
        const v = typeof p === 'string' ? p : placeholderValue(p, identity);
        if (v === undefined) return undefined;
        text += v;
      }
      out ??= this.tokens.slice(0, i);
      out.push({ kind: 'text', text, mayCoverWildcard: /[*#>]/.test(text) });
    }
    return out ?? this.tokens;
  }
}

function matchFrom(tokens: readonly Token[], ti: number, d: string, pos: number, failed: Set<number> | undefined): boolean {
  if (ti === tokens.length) return pos === d.length;
  const key = ti * (d.length + 1) + pos;
  if (failed?.has(key)) return false;
  const t = tokens[ti];
  let ok = false;
  if (t.kind === 'text') {
    ok = d.startsWith(t.text, pos) && !(t.mayCoverWildcard && coversWildcard(d, pos, pos + t.text.length))
      && matchFrom(tokens, ti + 1, d, pos + t.text.length, failed);
  } else if (t.kind === 'star') {
    let end = pos;
    while (end < d.length && !isSep(d.charCodeAt(end))) end++;
    const wide = end === pos + 1 && (d.charCodeAt(pos) === 0x23 || d.charCodeAt(pos) === 0x3e);
    ok = end > pos && !wide && matchFrom(tokens, ti + 1, d, end, failed);
  } else if (t.kind === 'globstar') {
    ok = matchFrom(tokens, ti + 1, d, pos, failed);
    if (!ok && (t.sep === null || (pos < d.length && d[pos] === t.sep))) {
      for (let p = pos + 1; p <= d.length && !ok; p++) ok = matchFrom(tokens, ti + 1, d, p, failed);
    }
  }
  if (!ok) failed?.add(key);
  return ok;
}

/** A whole wildcard segment of `d` lies within [from, to). */
function coversWildcard(d: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (isWildcardSegmentAt(d, i)) return true;
  return false;
}

/** Template parts → tokens: literal text split at `*` / `**` segments, placeholders kept with their neighbouring text. */
function compile(parts: readonly TemplatePart[]): Token[] {
  const tokens: Token[] = [];
  let pending: TemplatePart[] = [];
  const flush = (): void => {
    if (pending.length === 0) return;
    if (pending.every((p) => typeof p === 'string')) {
      const text = pending.join('');
      if (text !== '') tokens.push({ kind: 'text', text, mayCoverWildcard: false });
    } else {
      tokens.push({ kind: 'fill', parts: pending });
    }
    pending = [];
  };
  parts.forEach((part, index) => {
    if (typeof part !== 'string') {
      pending.push(part as Placeholder);
      return;
    }
    let text = '';
    let segStart = 0;
    for (let i = 0; i <= part.length; i++) {
      if (i < part.length && !isSep(part.charCodeAt(i))) continue;
      const seg = part.slice(segStart, i);
      const touchesFill = (segStart === 0 && index > 0) || (i === part.length && index < parts.length - 1);
      if ((seg === '*' || seg === '**') && touchesFill) throw new Error('a wildcard must be a whole segment, not next to a placeholder');
      if (seg === '*') {
        pending.push(text);
        flush();
        tokens.push({ kind: 'star' });
        text = '';
      } else if (seg === '**') {
        // The separator before `**` belongs to it: `/a/**` matches `/a` too.
        const sep = segStart > 0 ? part[segStart - 1] : null;
        pending.push(sep === null ? text : text.slice(0, -1));
        flush();
        tokens.push({ kind: 'globstar', sep });
        text = '';
      } else {
        text += seg;
      }
      if (i < part.length) text += part[i];
      segStart = i + 1;
    }
    if (text !== '') pending.push(text);
  });
  flush();
  return tokens;
}
