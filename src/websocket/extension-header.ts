/**
 * Sec-WebSocket-Extensions (RFC 6455 §9.1): parse and format.
 *
 *   extension-list = 1#extension
 *   extension      = extension-token *( ";" extension-param )
 *   extension-param = token [ "=" (token | quoted-string) ]
 *
 * One pass over the characters, no backtracking regular expression (the
 * lesson of CVE-2021-32640), hard limits checked before work proportional to
 * them. Names are compared case-insensitively, so they come back lower-cased.
 * What the parameters mean is the extension's business (permessage-deflate.ts):
 * this file only knows the grammar.
 */
import { TCHAR } from '../http/tokens.js';

export interface ExtensionParam {
  name: string;
  /** `true` for a parameter without a value. */
  value: string | true;
}

export interface ExtensionElement {
  name: string;
  /** In order, duplicates kept: whether a repeat is allowed is the extension's rule. */
  params: ExtensionParam[];
}

export type ExtensionListResult =
  | { ok: true; elements: ExtensionElement[] }
  | { ok: false; error: 'too_long' | 'too_many' | 'syntax' };

export interface ExtensionListLimits {
  maxBytes: number;
  /** Elements (offers) in the whole list. */
  maxElements: number;
  /** Parameters of one element. */
  maxParams: number;
}

const SP = 0x20, HTAB = 0x09, COMMA = 0x2c, SEMI = 0x3b, EQ = 0x3d, DQUOTE = 0x22, BACKSLASH = 0x5c;

/** A cursor over the header value; each method consumes what it recognises. */
class Scanner {
  pos = 0;
  constructor(readonly s: string) {}

  get done(): boolean { return this.pos >= this.s.length; }
  peek(): number { return this.s.charCodeAt(this.pos); }

  ows(): void {
    while (this.pos < this.s.length) {
      const c = this.s.charCodeAt(this.pos);
      if (c !== SP && c !== HTAB) return;
      this.pos++;
    }
  }

  /** A token, or '' when none starts here. */
  token(): string {
    const start = this.pos;
    while (this.pos < this.s.length) {
      const c = this.s.charCodeAt(this.pos);
      if (c >= 128 || TCHAR[c] === 0) break;
      this.pos++;
    }
    return this.s.slice(start, this.pos);
  }

  /** A quoted-string (RFC 9110 §5.6.4) starting at the opening quote; its unescaped content, or null if unterminated or invalid. */
  quoted(): string | null {
    let out = '';
    this.pos++; // opening quote
    while (this.pos < this.s.length) {
      const c = this.s.charCodeAt(this.pos++);
      if (c === DQUOTE) return out;
      if (c === BACKSLASH) {
        if (this.pos >= this.s.length) return null;
        const e = this.s.charCodeAt(this.pos++);
        if (e < 0x20 && e !== HTAB) return null;
        out += this.s[this.pos - 1];
      } else if ((c < 0x20 && c !== HTAB) || c === 0x7f) {
        return null;
      } else {
        out += this.s[this.pos - 1];
      }
    }
    return null;
  }
}

/**
 * Parse an extension list. Empty list elements (`a, , b`) are skipped, as
 * RFC 9110 §5.6.1.2 asks of recipients. A quoted value must be a token once
 * unquoted (§9.1), so `x="10"` equals `x=10`.
 */
export function parseExtensionList(value: string, limits: ExtensionListLimits): ExtensionListResult {
  if (value.length > limits.maxBytes) return { ok: false, error: 'too_long' };
  const sc = new Scanner(value);
  const elements: ExtensionElement[] = [];
  for (;;) {
    sc.ows();
    if (sc.done) return { ok: true, elements };
    if (sc.peek() === COMMA) { sc.pos++; continue; }
    const name = sc.token();
    if (name === '') return { ok: false, error: 'syntax' };
    if (elements.length === limits.maxElements) return { ok: false, error: 'too_many' };
    const element: ExtensionElement = { name: name.toLowerCase(), params: [] };
    elements.push(element);
    for (;;) {
      sc.ows();
      if (sc.done) return { ok: true, elements };
      const c = sc.peek();
      if (c === COMMA) { sc.pos++; break; }
      if (c !== SEMI) return { ok: false, error: 'syntax' };
      sc.pos++;
      sc.ows();
      const param = sc.token();
      if (param === '') return { ok: false, error: 'syntax' };
      if (element.params.length === limits.maxParams) return { ok: false, error: 'too_many' };
      sc.ows();
      let v: string | true = true;
      if (!sc.done && sc.peek() === EQ) {
        sc.pos++;
        sc.ows();
        const raw = !sc.done && sc.peek() === DQUOTE ? sc.quoted() : sc.token();
        // §9.1: the value, unquoted, must be a token.
        if (raw === null || raw === '' || !isTokenString(raw)) return { ok: false, error: 'syntax' };
        v = raw;
      }
      element.params.push({ name: param.toLowerCase(), value: v });
    }
  }
}

function isTokenString(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) return false;
  }
  return true;
}

/** One element as it goes on the wire: `name; a; b=10`. */
export function formatExtension(element: ExtensionElement): string {
  let s = element.name;
  for (const p of element.params) s += p.value === true ? `; ${p.name}` : `; ${p.name}=${p.value}`;
  return s;
}
