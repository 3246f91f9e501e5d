/**
 * Configuration problems as people read them: the dotted path of the bad
 * key, its line and column in the YAML file when there is one, and for an
 * unknown key the known key it was probably meant to be ("did you mean").
 */
import { isMap, isPair, isScalar, type Document, type LineCounter, type Node } from 'yaml';
import type { z } from 'zod';
import { configJsonSchema } from './json-schema.js';

/** Where the file came from, to place each issue; absent for config given as an object. */
export interface SourceMap { doc: Document; lines: LineCounter }

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.length === 0 ? '(root)' : path.map(String).join('.');
}

export function describeIssues(error: z.ZodError, source?: SourceMap): string[] {
  const out: string[] = [];
  for (const i of error.issues) {
    if (i.code === 'unrecognized_keys') {
      for (const key of i.keys) {
        const hint = suggestion(i.path, key);
        out.push(`${formatPath(i.path)}${where(source, i.path, key)}: unknown key ${JSON.stringify(key)}${hint ? ` — did you mean "${hint}"?` : ''}`);
      }
    } else {
      out.push(`${formatPath(i.path)}${where(source, i.path)}: ${i.message}`);
    }
  }
  return out;
}

/** " (line L, column C)" of the key at `path` (or of `key` in the mapping at `path`), '' when unknown. */
export function where(source: SourceMap | undefined, path: ReadonlyArray<PropertyKey>, key?: string): string {
  if (!source) return '';
  const offset = offsetOf(source.doc, path, key);
  if (offset === undefined) return '';
  const { line, col } = source.lines.linePos(offset);
  return ` (line ${line}, column ${col})`;
}

function offsetOf(doc: Document, path: ReadonlyArray<PropertyKey>, key?: string): number | undefined {
  const full = key === undefined ? path : [...path, key];
  // Point at the key of the last step when there is one (a mapping entry), else at the value.
  for (let n = full.length; n >= 0; n--) {
    const parent = n === 0 ? doc.contents : (doc.getIn(full.slice(0, n - 1).map(stepOf), true) as Node | undefined);
    if (n === 0) return (parent as Node | null)?.range?.[0];
    const step = full[n - 1];
    if (isMap(parent)) {
      const pair = parent.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(step));
      const k = pair?.key as Node | undefined;
      if (k?.range) return k.range[0];
    } else {
      const node = doc.getIn(full.slice(0, n).map(stepOf), true) as Node | undefined;
      if (node?.range) return node.range[0];
    }
  }
  return undefined;
}

function stepOf(p: PropertyKey): string | number {
  return typeof p === 'number' ? p : /^\d+$/.test(String(p)) ? Number(p) : String(p);
}

// ---- did you mean ----

interface JsonSchema { properties?: Record<string, JsonSchema>; additionalProperties?: JsonSchema | boolean; items?: JsonSchema; anyOf?: JsonSchema[]; oneOf?: JsonSchema[]; allOf?: JsonSchema[] }

let schemaCache: JsonSchema | undefined;

/** The known keys of the mapping at `path` (every branch of a union), from the JSON Schema. */
export function knownKeys(path: ReadonlyArray<PropertyKey>): string[] {
  let nodes: JsonSchema[] = [(schemaCache ??= configJsonSchema() as JsonSchema)];
  for (const step of path) {
    const next: JsonSchema[] = [];
    for (const n of nodes.flatMap(branches)) {
      if (n.properties?.[String(step)]) next.push(n.properties[String(step)]);
      else if (typeof step === 'number' || /^\d+$/.test(String(step))) { if (n.items) next.push(n.items); }
      else if (typeof n.additionalProperties === 'object') next.push(n.additionalProperties);
    }
    nodes = next;
  }
  return [...new Set(nodes.flatMap(branches).flatMap((n) => Object.keys(n.properties ?? {})))];
}

function branches(n: JsonSchema): JsonSchema[] {
  const alts = [...(n.anyOf ?? []), ...(n.oneOf ?? []), ...(n.allOf ?? [])];
  return alts.length === 0 ? [n] : [n, ...alts.flatMap(branches)];
}

/** The known key closest to `key`, when it is close enough to be a slip. */
export function suggestion(path: ReadonlyArray<PropertyKey>, key: string): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of knownKeys(path)) {
    const d = distance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) { best = k; bestDistance = d; }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

/** Damerau–Levenshtein (optimal string alignment) distance. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}
