#!/usr/bin/env node
/**
 * Benchmark runner: Gatehouse against a plain `ws` server, same load generator.
 *
 *   node bench/run.mjs [suite ...] [--runs N] [--quick] [options]
 *
 * Suites are the files in bench/suites/: each exports `name`, `description`
 * and `async run(ctx)` returning table rows (see bench/lib/report.mjs). With
 * no suite named, all run, in the order of SUITE_ORDER then by name.
 *
 * Options:
 *   --runs N        runs per measurement, median reported (default 3; --quick: 1)
 *   --quick         short intervals, fewer idle connections: a smoke test, not a result
 *   --duration S    throughput interval of the echo suite, seconds (default 3)
 *   --loadgens N    load generator processes for the echo suite (default 1)
 *   --connections N idle suite: connections to hold (default 10000)
 *   --sizes A,B     echo suite: only these message sizes in bytes (default 64,4096,262144)
 *   --conns A,B     echo suite: only these connection counts (default 1,50)
 *   --aa            A/A check: a second ws server stands in for Gatehouse (harness noise);
 *                   same as --candidate ws
 *   --candidate T   what runs in the Gatehouse column: gatehouse (default), ws, or raw
 *                   (a minimal raw-net echo: the load generator's ceiling)
 *   --profile       run both servers with --cpu-prof; profiles in bench/results/profiles/
 *   --out FILE      JSON output (default bench/results/bench-<date>.json)
 *   --gatehouse-root DIR  measure the (built) Gatehouse in another checkout, e.g. a branch's worktree
 *   --list          list the suites and exit
 *
 * Output: progress on stderr; the Markdown table on stdout; the JSON file.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { killAllServers, ROOT, startTarget, TARGET_NAMES } from './lib/targets.mjs';
import { killAllLoadgens, LoadgenPool } from './lib/loadgen-pool.mjs';
import { machine, machineLine, markdownTable, summarize } from './lib/report.mjs';

const SUITES_DIR = path.join(ROOT, 'bench', 'suites');
const RESULTS_DIR = path.join(ROOT, 'bench', 'results');
/** Suites listed here run first, in this order; any other suite follows, by name. */
const SUITE_ORDER = ['echo', 'idle', 'handshake', 'proxy', 'fallback'];
const TARGETS = ['gatehouse', 'ws'];

function parseArgs(argv) {
  const opts = { suites: [], runs: undefined, quick: false, candidate: 'gatehouse', profile: false, list: false };
  const num = (flag, v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} needs a positive number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--runs': opts.runs = num(a, argv[++i]); break;
      case '--quick': opts.quick = true; break;
      case '--duration': opts.duration = num(a, argv[++i]); break;
      case '--loadgens': opts.loadgens = num(a, argv[++i]); break;
      case '--connections': opts.connections = num(a, argv[++i]); break;
      case '--sizes': opts.sizes = String(argv[++i]).split(',').map((v) => num(a, v)); break;
      case '--conns': opts.conns = String(argv[++i]).split(',').map((v) => num(a, v)); break;
      case '--aa': opts.candidate = 'ws'; break;
      case '--candidate': opts.candidate = argv[++i]; break;
      case '--profile': opts.profile = true; break;
      case '--out': opts.out = argv[++i]; break;
      case '--gatehouse-root': opts.gatehouseRoot = argv[++i]; break;
      case '--list': opts.list = true; break;
      case '-h':
      case '--help':
        opts.help = true;
        break;
      default:
        if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
        opts.suites.push(a);
    }
  }
  return opts;
}

async function loadSuites() {
  const files = readdirSync(SUITES_DIR).filter((f) => f.endsWith('.mjs') || f.endsWith('.js'));
  const suites = [];
  for (const f of files) {
    const mod = await import(pathToFileURL(path.join(SUITES_DIR, f)).href);
    if (typeof mod.name !== 'string' || typeof mod.run !== 'function') {
      throw new Error(`bench/suites/${f} must export a name and a run function`);
    }
    suites.push(mod);
  }
  const rank = (s) => {
    const i = SUITE_ORDER.indexOf(s.name);
    return i < 0 ? SUITE_ORDER.length : i;
  };
  return suites.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

function log(msg) {
  process.stderr.write(`${msg}\n`);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const all = await loadSuites();
  if (opts.help || opts.list) {
    if (opts.help) {
      log('usage: node bench/run.mjs [suite ...] [--runs N] [--quick] [--duration S] [--loadgens N] ' +
        '[--connections N] [--sizes A,B] [--conns A,B] [--aa | --candidate gatehouse|ws|raw] [--profile] [--out FILE] ' +
        '[--gatehouse-root DIR] [--list]');
    }
    for (const s of all) process.stdout.write(`${s.name.padEnd(10)} ${s.description ?? ''}\n`);
    return;
  }
  if (!TARGET_NAMES.includes(opts.candidate)) throw new Error(`unknown candidate ${opts.candidate} (have: ${TARGET_NAMES.join(', ')})`);
  const unknown = opts.suites.filter((n) => !all.some((s) => s.name === n));
  if (unknown.length > 0) throw new Error(`unknown suite(s): ${unknown.join(', ')} (have: ${all.map((s) => s.name).join(', ')})`);
  const selected = opts.suites.length > 0 ? all.filter((s) => opts.suites.includes(s.name)) : all;
  const runs = opts.runs ?? (opts.quick ? 1 : 3);

  mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const nodeArgs = [];
  let profileDir;
  if (opts.profile) {
    profileDir = path.join(RESULTS_DIR, 'profiles', stamp);
    mkdirSync(profileDir, { recursive: true });
    log(`CPU profiles → ${path.relative(ROOT, profileDir)}/<target>-<n>/ (summarise with node bench/profile-top.mjs FILE)`);
  }

  const ctx = {
    options: opts,
    runs,
    quick: opts.quick,
    candidate: opts.candidate,
    targets: TARGETS,
    /** The order to measure the targets in for step k (alternates). */
    order: (k) => (k % 2 === 0 ? [...TARGETS] : [...TARGETS].reverse()),
    startServer: (name, extra = {}) => startTarget(name, {
      candidate: opts.candidate === 'gatehouse' ? undefined : opts.candidate, nodeArgs, profileDir,
      gatehouseRoot: opts.gatehouseRoot, ...extra,
    }),
    spawnLoadgens: (n) => LoadgenPool.spawn(n),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    log,
  };

  const m = machine();
  log(`machine: ${machineLine(m)}`);
  log(`suites: ${selected.map((s) => s.name).join(', ')}; runs: ${runs}${opts.quick ? ' (quick)' : ''}${opts.candidate !== 'gatehouse' ? `; candidate: ${opts.candidate} (not Gatehouse)` : ''}`);

  const started = Date.now();
  const rows = [];
  for (const suite of selected) {
    const t0 = Date.now();
    log(`--- suite ${suite.name}`);
    const suiteRows = await suite.run(ctx);
    for (const row of suiteRows) rows.push({ suite: suite.name, ...row, summary: summarize(row) });
    log(`--- suite ${suite.name} done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }

  const labels = opts.candidate === 'gatehouse' ? undefined
    : { gatehouse: opts.candidate === 'ws' ? 'ws (A)' : opts.candidate, ws: 'ws' };
  const table = markdownTable(rows, { labels });
  process.stdout.write(`\n${machineLine(m)}\n` +
    `runs: ${runs}${opts.quick ? ' (quick)' : ''}; values are medians; ratio is the median of per-run ratios\n\n${table}\n`);

  const out = opts.out ?? path.join(RESULTS_DIR, `bench-${stamp}.json`);
  writeFileSync(out, `${JSON.stringify({ machine: m, options: { ...opts, runs }, elapsedSeconds: (Date.now() - started) / 1000, rows }, null, 2)}\n`);
  log(`\nJSON: ${path.relative(process.cwd(), out)}; total ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

function cleanup() {
  killAllLoadgens();
  killAllServers();
}

for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
  process.on(signal, () => {
    cleanup();
    process.exit(code);
  });
}
process.on('exit', cleanup);

main().then(
  () => cleanup(),
  (err) => {
    log(`bench: ${err.stack ?? err.message}`);
    cleanup();
    process.exitCode = 1;
  },
);
