/**
 * Topic names and topic filters exactly as MQTT defines them (3.1.1 §4.7,
 * 5.0 §4.7): levels separated by `/`, `+` matches one level, `#` the rest
 * (and the parent level itself), and a filter that starts with a wildcard
 * does not match topics starting with `$`.
 *
 * A filter is a list of levels where the wildcards are numbers and every
 * string is literal text: a literal level whose text happens to be `+` is
 * still compared character by character, so text substituted from a
 * principal can never become a wildcard by construction.
 */
export const SINGLE = 1;
export const MULTI = 2;
export type Level = string | typeof SINGLE | typeof MULTI;
export type Filter = readonly Level[];

/** A requested filter, parsed; `undefined` when it is not a valid filter. */
export function parseFilter(text: string): Level[] | undefined {
  if (text.length === 0) return undefined;
  const parts = text.split('/');
  const levels: Level[] = new Array(parts.length);
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (p === '+') levels[i] = SINGLE;
    else if (p === '#') {
      if (i !== parts.length - 1) return undefined;
      levels[i] = MULTI;
    } else if (p.includes('+') || p.includes('#')) return undefined;
    else levels[i] = p;
  }
  return levels;
}

export interface RequestedFilter {
  /** MQTT 5.0 shared subscription `$share/{name}/{filter}`: the share name. */
  share?: string;
  levels: Level[];
}

/**
 * A SUBSCRIBE's filter: a plain filter, or a shared subscription whose inner
 * filter is what the policy checks. `undefined` when invalid.
 */
export function parseRequestedFilter(text: string): RequestedFilter | undefined {
  if (!text.startsWith('$share/')) {
    const levels = parseFilter(text);
    return levels && { levels };
  }
  const slash = text.indexOf('/', 7);
  if (slash < 0) return undefined;
  const share = text.slice(7, slash);
  if (share.length === 0 || share.includes('+') || share.includes('#')) return undefined;
  const levels = parseFilter(text.slice(slash + 1));
  return levels && { share, levels };
}

/** A PUBLISH topic name: at least one character, no wildcard. */
export function isValidTopicName(topic: string): boolean {
  return topic.length > 0 && !topic.includes('+') && !topic.includes('#');
}

/** Does `filter` match the topic name whose levels are `topic`? */
export function matches(filter: Filter, topic: readonly string[]): boolean {
  if (topic[0].startsWith('$') && typeof filter[0] === 'number') return false;
  const n = filter.length;
  for (let i = 0; i < n; i++) {
    const f = filter[i];
    if (f === MULTI) return true;
    if (i >= topic.length) return false;
    if (f !== SINGLE && f !== topic[i]) return false;
  }
  return topic.length === n;
}

/**
 * Is every topic `requested` can match also matched by `allowed`?
 * `devices/alice/#` covers `devices/alice/+/temp`, not `devices/+/temp`;
 * `#` does not cover `$SYS/#`.
 */
export function covers(allowed: Filter, requested: Filter): boolean {
  const r0 = requested[0];
  if (typeof allowed[0] === 'number' && typeof r0 === 'string' && r0.startsWith('$')) return false;
  for (let i = 0; ; i++) {
    const a = allowed[i];
    if (a === MULTI) return true;
    if (i >= requested.length) return i === allowed.length;
    if (i >= allowed.length) return false;
    const r = requested[i];
    if (r === MULTI) return false;
    if (r === SINGLE) {
      if (a !== SINGLE) return false;
    } else if (a !== SINGLE && a !== r) {
      return false;
    }
  }
}

/** Is `topic` (levels) inside any of `filters`? */
export function anyMatches(filters: readonly Filter[], topic: readonly string[]): boolean {
  for (const f of filters) if (matches(f, topic)) return true;
  return false;
}

/** Is `requested` inside any of `filters`? */
export function anyCovers(filters: readonly Filter[], requested: Filter): boolean {
  for (const f of filters) if (covers(f, requested)) return true;
  return false;
}
