#!/usr/bin/env node
/**
 * Before/after of a change, in one command: the same suites, with this
 * checkout's bench code, measure a base commit's Gatehouse and this
 * checkout's, run by run in alternating order, each run with its own anchors
 * (ws, nginx, the bare relay, SockJS, Socket.IO) measured beside it.
 *
 *   node bench/compare.mjs --base <commit> [--runs N] [--keep] [suite ...] [-- run.mjs options]
 *
 *   --base C   the commit to compare against (anything `git rev-parse` takes)
 *   --runs N   rounds (default 2); each round runs every suite once per build
 *   --keep     keep the base checkout (in the temp dir, reused by the next --keep run of the same commit)
 *   suite ...  suites of bench/run.mjs (default: echo proxy fallback)
 *   -- ...     passed to bench/run.mjs as is, e.g. `-- --sizes 64,4096`
 *
 * The base is exported with `git archive` into a temp directory, installed
 * (`npm ci`) and built there; this checkout must be built (`npm run build`).
 * Progress goes to stderr; the table (before, after, the anchor, each one's
 * ratio to the anchor of its own run, the target and whether "after" meets
 * it) to stdout; every run's JSON to bench/results/compare-<date>/.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { summarize } from './lib/report.mjs';
import { median } from './lib/stats.mjs';
import { ROOT } from './lib/targets.mjs';

function parse(argv) {
  const dash = argv.indexOf('--');
  const own = dash >= 0 ? argv.slice(0, dash) : argv;
  const opts = { base: undefined, runs: 2, keep: false, suites: [], pass: dash >= 0 ? argv.slice(dash + 1) : [] };
  for (let i = 0; i < own.length; i++) {
    const a = own[i];
    if (a === '--base') opts.base = own[++i];
    else if (a === '--runs') opts.runs = Number(own[++i]);
    else if (a === '--keep') opts.keep = true;
    else if (a.startsWith('-')) throw new Error(`unknown option ${a} (options of bench/run.mjs go after --)`);
    else opts.suites.push(a);
  }
  if (!opts.base) throw new Error('usage: node bench/compare.mjs --base <commit> [--runs N] [--keep] [suite ...] [-- run.mjs options]');
  if (!(opts.runs >= 1)) throw new Error('--runs needs a positive number');
  if (opts.suites.length === 0) opts.suites = ['echo', 'proxy', 'fallback'];
  return opts;
}

const log = (m) => process.stderr.write(`${m}\n`);

function sh(cmd, args, cwd) {
  // Its output goes to stderr with the progress: stdout is the table.
  const r = spawnSync(cmd, args, { cwd, stdio: ['ignore', 2, 2] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd} (exit ${r.status})`);
}

/** The base commit exported, installed and built; returns its directory. */
function prepareBase(commit, keep) {
  const sha = execFileSync('git', ['rev-parse', '--verify', `${commit}^{commit}`], { cwd: ROOT, encoding: 'utf8' }).trim();
  const dir = path.join(os.tmpdir(), `gatehouse-bench-base-${sha.slice(0, 12)}`);
  if (existsSync(path.join(dir, 'dist', 'main.js')) && keep) {
    log(`base ${sha.slice(0, 12)}: reusing ${dir}`);
    return { sha, dir };
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  log(`base ${sha.slice(0, 12)}: exporting to ${dir}, npm ci, build`);
  const tar = execFileSync('git', ['archive', '--format=tar', sha], { cwd: ROOT, maxBuffer: 1 << 30 });
  const untar = spawnSync('tar', ['-x', '-C', dir], { input: tar });
  if (untar.status !== 0) throw new Error(`tar failed: ${untar.stderr}`);
  // npm ci runs `prepare`, which builds dist/ and the client library.
  sh('npm', ['ci', '--no-audit', '--no-fund'], dir);
  return { sha, dir };
}

/** Rows are matched by suite, case and metric; "(direct …)" in a case is that run's figure, not part of its name. */
const keyOf = (row) => `${row.suite} | ${row.case.replace(/\s*\(direct [^)]*\)/, '')} | ${row.metric}`;

function fmt(format, v) {
  if (!Number.isFinite(v)) return '—';
  if (format === 'rate') return Math.round(v).toLocaleString('en-US');
  if (format === 'us') return v >= 100 ? `${v.toFixed(0)} µs` : v >= 10 ? `${v.toFixed(1)} µs` : `${v.toFixed(2)} µs`;
  if (format === 'bytes') return `${(v / 1024).toFixed(2)} KiB`;
  return String(Math.round(v * 100) / 100);
}

function vsAnchor(row, build) {
  const s = summarize({ ...row, values: { gatehouse: row.values[build], ws: row.values[`${build}Anchor`] } });
  if (row.target?.kind === 'difference') return { text: Number.isFinite(s.difference) ? `${s.difference >= 0 ? '+' : '−'}${fmt(row.format, Math.abs(s.difference))}` : '—', s };
  return { text: Number.isFinite(s.ratio) ? `${s.ratio.toFixed(2)}×` : '—', s };
}

function table(merged) {
  const lines = [
    '| Suite | Case | Metric | before | after | anchor | before vs anchor | after vs anchor | Target | Met (after) |',
    '|---|---|---|---:|---:|---:|---:|---:|---|---|',
  ];
  for (const row of merged.values()) {
    const before = vsAnchor(row, 'base');
    const after = vsAnchor(row, 'head');
    const t = row.target;
    const op = t ? (t.op === '>=' ? '≥' : '≤') : '';
    const target = !t ? '' : t.kind === 'ratio' ? `${op} ${t.value}×` : t.kind === 'difference' ? `${op} +${fmt(row.format, t.value)}` : `${op} ${fmt(row.format, t.value)}`;
    const met = after.s.met === null ? '' : after.s.met ? 'yes' : '**no**';
    const anchor = median([...row.values.baseAnchor, ...row.values.headAnchor]);
    lines.push(`| ${row.key.split(' | ').join(' | ')} | ${fmt(row.format, median(row.values.base))} | ${fmt(row.format, median(row.values.head))} | ` +
      `${fmt(row.format, anchor)} | ${before.text} | ${after.text} | ${target} | ${met} |`);
  }
  return lines.join('\n');
}

async function main() {
  const opts = parse(process.argv.slice(2));
  if (!existsSync(path.join(ROOT, 'dist', 'main.js'))) throw new Error('build this checkout first: npm run build');
  const base = prepareBase(opts.base, opts.keep);
  const head = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  const outDir = path.join(ROOT, 'bench', 'results', `compare-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(outDir, { recursive: true });
  log(`before: ${base.sha.slice(0, 12)} (${base.dir}); after: this checkout (${head}, ${ROOT}); suites: ${opts.suites.join(' ')}; ${opts.runs} rounds`);

  /** key → { key, format, target, values: { base, baseAnchor, head, headAnchor } } */
  const merged = new Map();
  for (let r = 0; r < opts.runs; r++) {
    const order = r % 2 === 0 ? ['base', 'head'] : ['head', 'base'];
    for (const build of order) {
      const out = path.join(outDir, `${build}-${r + 1}.json`);
      const args = [path.join(ROOT, 'bench', 'run.mjs'), ...opts.suites, '--runs', '1', '--out', out, ...opts.pass];
      if (build === 'base') args.push('--gatehouse-root', base.dir);
      log(`--- round ${r + 1}/${opts.runs}: ${build === 'base' ? 'before' : 'after'}`);
      const res = spawnSync(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
      if (res.status !== 0) throw new Error(`bench/run.mjs failed (${build}, round ${r + 1})`);
      for (const row of JSON.parse(readFileSync(out, 'utf8')).rows) {
        const key = keyOf(row);
        const m = merged.get(key) ?? { key, format: row.format, target: row.target, values: { base: [], baseAnchor: [], head: [], headAnchor: [] } };
        m.values[build][r] = row.values.gatehouse[0];
        m.values[`${build}Anchor`][r] = row.values.ws[0];
        merged.set(key, m);
      }
    }
  }
  const text = `before ${base.sha.slice(0, 12)}, after ${head}; ${opts.runs} rounds, medians; ` +
    `"vs anchor" is the median of per-round ratios (differences, for a target in µs) to the anchor measured in the same run\n\n${table(merged)}\n`;
  process.stdout.write(`\n${text}`);
  writeFileSync(path.join(outDir, 'table.md'), text);
  writeFileSync(path.join(outDir, 'merged.json'), `${JSON.stringify({ base: base.sha, head, suites: opts.suites, pass: opts.pass, rows: [...merged.values()] }, null, 2)}\n`);
  log(`\ntable and JSON: ${path.relative(process.cwd(), outDir)}/`);
  if (!opts.keep) rmSync(base.dir, { recursive: true, force: true });
}

main().catch((err) => {
  log(`compare: ${err.stack ?? err.message}`);
  process.exitCode = 1;
});
