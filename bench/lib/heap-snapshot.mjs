/**
 * V8 heap snapshots of a server process started with
 * `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=<dir>`: take one, and sum
 * one by object kind (node type and constructor name) to compare two.
 * Taking a snapshot forces full GCs, so what a snapshot holds is live.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Node flags that make a process write a snapshot into `dir` on SIGUSR2. */
export const snapshotNodeArgs = (dir) => ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`];

/** Signals the process, waits for its new snapshot file to be complete and returns its path. */
export async function takeSnapshot(pid, dir) {
  const before = new Set(readdirSync(dir));
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 1200; i++) {
    await sleep(100);
    const fresh = readdirSync(dir).filter((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
    if (fresh.length > 0) {
      // The file is written in pieces: wait until it stops growing.
      const file = path.join(dir, fresh[0]);
      let last = -1;
      for (;;) {
        const size = statSync(file).size;
        if (size === last && size > 0) return file;
        last = size;
        await sleep(500);
      }
    }
  }
  throw new Error(`no heap snapshot written by pid ${pid}`);
}

/** A snapshot's nodes summed by "type: name" → { count, size }, and the total self size. */
export function aggregate(file) {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const { nodes, strings } = snap;
  const groups = new Map();
  let totalSize = 0;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + iType]];
    let name = strings[nodes[i + iName]];
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '(string)';
    else if (type === 'number') name = '(heap number)';
    else if (type === 'code') name = '(code)';
    else if (name.length > 60) name = `${name.slice(0, 57)}...`;
    const key = `${type}: ${name}`;
    const e = groups.get(key) ?? { count: 0, size: 0 };
    e.count++;
    e.size += nodes[i + iSize];
    totalSize += nodes[i + iSize];
    groups.set(key, e);
  }
  return { groups, totalSize };
}

/** The kinds whose count or size changed from `a` to `b` (aggregates), largest size change first. */
export function difference(a, b) {
  const rows = [];
  for (const key of new Set([...a.groups.keys(), ...b.groups.keys()])) {
    const x = a.groups.get(key) ?? { count: 0, size: 0 };
    const y = b.groups.get(key) ?? { count: 0, size: 0 };
    if (x.count !== y.count || x.size !== y.size) rows.push({ key, count: y.count - x.count, size: y.size - x.size });
  }
  return rows.sort((r, s) => Math.abs(s.size) - Math.abs(r.size));
}
