/** Helpers over raw header lists (names and values alternate, duplicates kept). */

/** How many header lines carry `name` (lowercase). */
export function countHeader(rawHeaders: readonly string[], name: string): number {
  let n = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const h = rawHeaders[i];
    if (h.length === name.length && h.toLowerCase() === name) n++;
  }
  return n;
}

/** Every value of header `name` (lowercase), in arrival order. */
export function headerValues(rawHeaders: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const h = rawHeaders[i];
    if (h.length === name.length && h.toLowerCase() === name) out.push(rawHeaders[i + 1] ?? '');
  }
  return out;
}
