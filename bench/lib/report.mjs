/**
 * Turning suite rows into the summary table (Markdown) and the JSON record.
 *
 * A row, as a suite returns it:
 *   { case, metric, format: 'rate' | 'us' | 'bytes' | 'number', better: 'higher' | 'lower',
 *     values: { gatehouse: number[], ws: number[] },     // one value per run, index = run
 *     target?: { kind: 'ratio', op: '>=' | '<=', value }  // on the Gatehouse/ws ratio
 *            | { kind: 'difference', op: '>=' | '<=', value } // on Gatehouse − ws (same unit as the values)
 *            | { kind: 'absolute', op: '>=' | '<=', value, of: 'gatehouse' },
 *     labels?: { gatehouse, ws },                         // column names when the two sides are not Gatehouse and ws
 *     extra?: any }                                       // kept in the JSON only
 *
 * Summary: each side's median over runs, and the ratio = median over runs of
 * the per-run ratio gatehouse[i] / ws[i] (runs are paired: same run, adjacent in time);
 * likewise the difference = median over runs of gatehouse[i] − ws[i].
 */
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { median } from './stats.mjs';

export function summarize(row) {
  const a = row.values.gatehouse ?? [];
  const b = row.values.ws ?? [];
  const ratios = [];
  const diffs = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (Number.isFinite(a[i]) && Number.isFinite(b[i]) && b[i] !== 0) ratios.push(a[i] / b[i]);
    if (Number.isFinite(a[i]) && Number.isFinite(b[i])) diffs.push(a[i] - b[i]);
  }
  const gatehouse = median(a);
  const ws = median(b);
  const ratio = median(ratios);
  const difference = median(diffs);
  let met = null;
  if (row.target) {
    const kind = row.target.kind;
    const subject = kind === 'ratio' ? ratio : kind === 'difference' ? difference : gatehouse;
    if (Number.isFinite(subject)) met = row.target.op === '>=' ? subject >= row.target.value : subject <= row.target.value;
  }
  return { gatehouse, ws, ratio, ratios, difference, runs: ratios.length, met };
}

function fmt(format, v) {
  if (!Number.isFinite(v)) return '—';
  switch (format) {
    case 'rate':
      return Math.round(v).toLocaleString('en-US');
    case 'us':
      return v >= 100 ? `${v.toFixed(0)} µs` : v >= 10 ? `${v.toFixed(1)} µs` : `${v.toFixed(2)} µs`;
    case 'bytes':
      return `${(v / 1024).toFixed(2)} KiB`;
    default:
      return String(Math.round(v * 100) / 100);
  }
}

function targetText(row) {
  const t = row.target;
  if (!t) return '';
  const op = t.op === '>=' ? '≥' : '≤';
  if (t.kind === 'ratio') return `${op} ${t.value}×`;
  if (t.kind === 'difference') return `${op} +${fmt(row.format, t.value)}`;
  return `${op} ${fmt(row.format, t.value)}`;
}

/** The ratio column; a row whose target is a difference shows the difference instead (e.g. `+8.1 µs`). */
function ratioCell(row, s) {
  if (row.target?.kind === 'difference') {
    return Number.isFinite(s.difference) ? `${s.difference >= 0 ? '+' : '−'}${fmt(row.format, Math.abs(s.difference))}` : '—';
  }
  return Number.isFinite(s.ratio) ? `${s.ratio.toFixed(2)}×` : '—';
}

/**
 * One table per run of consecutive rows with the same column names: a suite whose two
 * sides are not Gatehouse and ws (the inspector suites: inspector and passthrough)
 * says so in its own header instead of borrowing the others'.
 */
export function markdownTable(rows, { labels = { gatehouse: 'Gatehouse', ws: 'ws' } } = {}) {
  const groups = [];
  for (const row of rows) {
    const own = row.labels ?? labels;
    const last = groups.at(-1);
    if (last && last.labels.gatehouse === own.gatehouse && last.labels.ws === own.ws) last.rows.push(row);
    else groups.push({ labels: own, rows: [row] });
  }
  return groups.map((g) => tableOf(g.rows, g.labels)).join('\n\n');
}

function tableOf(rows, labels) {
  const head = ['Suite', 'Case', 'Metric', labels.gatehouse, labels.ws, `${labels.gatehouse}/${labels.ws}`, 'Target', 'Met'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i >= 3 && i <= 5 ? '---:' : '---')).join('|')}|`];
  for (const row of rows) {
    const s = row.summary ?? summarize(row);
    const cells = [
      row.suite, row.case, row.metric,
      fmt(row.format, s.gatehouse), fmt(row.format, s.ws),
      ratioCell(row, s),
      targetText(row),
      s.met === null ? '' : s.met ? 'yes' : '**no**',
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

export function machine() {
  const model = (sh('lscpu', []).split('\n').find((l) => l.startsWith('Model name')) ?? '').replace(/^Model name:\s*/, '')
    || os.cpus()[0]?.model || 'unknown';
  return {
    date: new Date().toISOString(),
    nproc: Number(sh('nproc', [])) || os.availableParallelism(),
    cpu: model,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    openFiles: sh('sh', ['-c', 'ulimit -n']),
    commit: sh('git', ['rev-parse', '--short', 'HEAD']),
  };
}

export function machineLine(m) {
  return `${m.nproc} CPUs (${m.cpu}), ${m.memoryGiB} GiB RAM, Node ${m.node}, ${m.kernel}, ` +
    `open files ${m.openFiles}, commit ${m.commit}, ${m.date}`;
}
