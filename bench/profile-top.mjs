#!/usr/bin/env node
/**
 * Summarise a V8 CPU profile (`node --cpu-prof` output, e.g. from
 * `node bench/run.mjs echo --profile`): the functions with the most self time,
 * the functions with the most total (inclusive) time, and self time per file.
 *
 *   node bench/profile-top.mjs FILE.cpuprofile [--top N]
 *
 * Percentages are of all samples and of busy samples (all but "(idle)"); GC
 * and native work show as V8's pseudo-functions "(garbage collector)", "(program)".
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

process.stdout.on('error', () => process.exit(0)); // e.g. piped into head
const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--'));
const topIdx = args.indexOf('--top');
const TOP = topIdx >= 0 ? Number(args[topIdx + 1]) : 25;
if (!file) {
  process.stderr.write('usage: node bench/profile-top.mjs FILE.cpuprofile [--top N]\n');
  process.exit(2);
}

const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));

function shortUrl(url) {
  if (!url) return '';
  const u = url.replace(/^file:\/\//, '');
  const i = u.indexOf('/node_modules/');
  if (i >= 0) return u.slice(i + 1);
  for (const marker of ['/dist/', '/src/', '/bench/', '/bin/']) {
    const j = u.indexOf(marker);
    if (j >= 0) return u.slice(j + 1);
  }
  return u.startsWith('node:') ? u : path.basename(u);
}

function key(n) {
  const cf = n.callFrame;
  const fn = cf.functionName || '(anonymous)';
  const url = shortUrl(cf.url);
  return url ? `${fn}  ${url}:${cf.lineNumber + 1}` : fn;
}

// Self samples per node: from `samples` when present, else hitCount.
const selfCount = new Map();
if (Array.isArray(profile.samples) && profile.samples.length > 0) {
  for (const id of profile.samples) selfCount.set(id, (selfCount.get(id) ?? 0) + 1);
} else {
  for (const n of profile.nodes) selfCount.set(n.id, n.hitCount ?? 0);
}
let total = 0;
for (const c of selfCount.values()) total += c;

const self = new Map();
const fileSelf = new Map();
for (const [id, c] of selfCount) {
  const n = byId.get(id);
  const k = key(n);
  self.set(k, (self.get(k) ?? 0) + c);
  const f = shortUrl(n.callFrame.url) || n.callFrame.functionName || '(native)';
  fileSelf.set(f, (fileSelf.get(f) ?? 0) + c);
}

// Inclusive: each node's subtree, counted once per function even under recursion.
const inclusive = new Map();
const rootId = profile.nodes[0].id;
function walk(id, onStack) {
  const n = byId.get(id);
  let sub = selfCount.get(id) ?? 0;
  const k = key(n);
  const fresh = !onStack.has(k);
  if (fresh) onStack.add(k);
  for (const child of n.children ?? []) sub += walk(child, onStack);
  if (fresh) {
    onStack.delete(k);
    inclusive.set(k, (inclusive.get(k) ?? 0) + sub);
  }
  return sub;
}
walk(rootId, new Set());

const idle = self.get('(idle)') ?? 0;
const busy = total - idle;
const pct = (c, of) => `${((c * 100) / of).toFixed(1).padStart(5)} %`;
function print(title, map, n) {
  process.stdout.write(`\n${title}\n  of all   of busy\n`);
  for (const [k, c] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n)) {
    process.stdout.write(`${pct(c, total)}  ${k === '(idle)' ? '        ' : pct(c, busy)}  ${k}\n`);
  }
}

const ms = (profile.endTime - profile.startTime) / 1000;
process.stdout.write(`${file}: ${total} samples over ${(ms / 1000).toFixed(1)} s, ` +
  `${busy} busy (not "(idle)")\n`);
print(`Top ${TOP} by self time`, self, TOP);
inclusive.delete(key(byId.get(rootId)));
print(`Top ${TOP} by total time (self + callees)`, inclusive, TOP);
print('Self time by file', fileSelf, 15);
