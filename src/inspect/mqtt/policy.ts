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
import { parseTemplate } from '../../config/placeholders.js';
import { fillTemplate, placeholderValue, type PlaceholderIdentity } from '../placeholders.js';
import { MULTI, SINGLE, type Filter, type Level } from './topics.js';

/** Characters a substituted value may not contain: level separator, wildcards, NUL. */
const NOT_IN_A_LEVEL = /[/+#\u0000]/;

/**
 * Compile one filter template for a principal; `undefined` when the template
 * matches nothing for it. Templates were validated at config load.
 */
export function compileFilter(template: string, identity: PlaceholderIdentity | undefined): Filter | undefined {
  const parsed = parseTemplate(template);
  if ('error' in parsed) return undefined;
  const levels: Level[] = [];
  let text = '';
  /** The current level has a substituted value in it (so it is never a wildcard). */
  let filled = false;
  const endLevel = (): void => {
    levels.push(!filled && text === '+' ? SINGLE : !filled && text === '#' ? MULTI : text);
    text = '';
    filled = false;
  };
  for (const part of parsed.parts) {
    if (typeof part === 'string') {
      const pieces = part.split('/');
      for (let i = 0; i < pieces.length; i++) {
        if (i > 0) endLevel();
        text += pieces[i];
      }
      continue;
    }
    const value = placeholderValue(part, identity);
    if (value === undefined || value.length === 0 || NOT_IN_A_LEVEL.test(value)) return undefined;
    if (levels.length === 0 && text.length === 0 && value.startsWith('$')) return undefined;
    text += value;
    filled = true;
  }
  endLevel();
  return levels;
}

/** Compile a list of templates; those matching nothing for the principal are left out. */
export function compileFilters(templates: readonly string[], identity: PlaceholderIdentity | undefined): Filter[] {
  const out: Filter[] = [];
  for (const t of templates) {
    const f = compileFilter(t, identity);
    if (f) out.push(f);
  }
  return out;
}

/**
 * The share groups a principal may join: the templates filled in, each a
 * literal name; one whose value cannot be one level's text (absent, empty,
 * `/`, `+`, `#`, U+0000) is left out.
 */
export function compileShareGroups(templates: readonly string[], identity: PlaceholderIdentity | undefined): Set<string> {
  const out = new Set<string>();
  for (const t of templates) {
    const parsed = parseTemplate(t);
    if ('error' in parsed) continue;
    const name = fillTemplate(parsed.parts, identity);
    if (name !== undefined && name.length > 0 && !NOT_IN_A_LEVEL.test(name)) out.add(name);
  }
  return out;
}
