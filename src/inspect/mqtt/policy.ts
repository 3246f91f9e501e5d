/**
 * The MQTT topic policy of one connection: the configured filter templates
 * with the principal's values put in, as filters of literal levels.
 *
 * A value from the principal always stands for text inside one level. When
 * it cannot be that — absent, empty, or containing `/`, `+`, `#` or U+0000 —
 * the template matches nothing for this principal (it never widens); nor
 * does a value that would make a first level start with `$` when the
 * template's own text did not, so no id reaches `$SYS`.
 */
import type { Principal } from '../../admitted.js';
import { MULTI, SINGLE, type Filter, type Level } from './topics.js';
import { placeholderValue, splitTemplate } from './template.js';

/** Characters a substituted value may not contain: level separator, wildcards, NUL. */
const NOT_IN_A_LEVEL = /[/+#\u0000]/;

/**
 * Compile one filter template for a principal; `undefined` when the template
 * matches nothing for it. Templates were validated at config load.
 */
export function compileFilter(template: string, principal: Principal | undefined): Filter | undefined {
  const levels: Level[] = [];
  for (const [i, level] of template.split('/').entries()) {
    if (level === '+') { levels.push(SINGLE); continue; }
    if (level === '#') { levels.push(MULTI); continue; }
    let text = '';
    for (const piece of splitTemplate(level)) {
      if (typeof piece === 'string') { text += piece; continue; }
      const value = placeholderValue(piece, principal);
      if (value === undefined || value.length === 0 || NOT_IN_A_LEVEL.test(value)) return undefined;
      if (i === 0 && text.length === 0 && value.startsWith('$')) return undefined;
      text += value;
    }
    levels.push(text);
  }
  return levels;
}

/** Compile a list of templates; those matching nothing for the principal are left out. */
export function compileFilters(templates: readonly string[], principal: Principal | undefined): Filter[] {
  const out: Filter[] = [];
  for (const t of templates) {
    const f = compileFilter(t, principal);
    if (f) out.push(f);
  }
  return out;
}
