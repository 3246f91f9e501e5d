/**
 * Suite `echo`: messages/s, round-trip latency and server CPU per message for
 * binary echo at 64 B, 4 KiB and 256 KiB × 1 and 50 connections.
 *
 * Per run, both servers are started fresh; for each case, the two servers are
 * measured one after the other, the order alternating by run and by case.
 * Each measurement forks new load generator processes, so nothing carries over.
 *
 * One measurement of one server for one case:
 *   1. open the connections, echo one message per connection and compare the bytes;
 *   2. throughput phase: up to `window` messages in flight per connection
 *      (topped up once a quarter of the window is free);
 *      warm-up, then a fixed interval: messages/s, server CPU (utime+stime) / messages;
 *   3. closed loop: 1 message in flight per connection (the next one goes
 *      when the echo of the last is in, as a chat message or a game move
 *      does); warm-up, then a fixed interval: messages/s, server CPU /
 *      messages, p50 and p99 of the round trips;
 *   4. every echo checked (binary, exact length); any error fails the run.
 */
import { schedstat } from '../lib/proc.mjs';
import { histCount, histQuantile, mergeHists } from '../lib/stats.mjs';

export const name = 'echo';
export const description = 'echo messages/s, CPU/message and latency, pipelined and 1 in flight: 64 B, 4 KiB, 256 KiB × 1 and 50 connections';

export const SIZES = [64, 4096, 256 * 1024];
export const CONNECTIONS = [1, 50];

/** Messages in flight per connection in the throughput phase. */
export function windowFor(size) {
  return size >= 64 * 1024 ? 4 : 32;
}

/** The load generator tops the window up once this many of its slots are free. */
export function refillFor(window) {
  return Math.max(1, Math.floor(window / 4));
}

function sizeLabel(size) {
  if (size >= 1024 * 1024) return `${size / (1024 * 1024)} MiB`;
  if (size >= 1024) return `${size / 1024} KiB`;
  return `${size} B`;
}

export function timing(ctx) {
  const t = ctx.quick
    ? { warmup: 500, duration: 1500, latWarmup: 300, latDuration: 1000 }
    : { warmup: 1000, duration: 3000, latWarmup: 500, latDuration: 2000 };
  if (ctx.options.duration) t.duration = ctx.options.duration * 1000;
  return t;
}

/**
 * One server, one case. `c.phase` adds to every phase's load generator
 * options (the compression suite: `deflate`, `text`), `c.connect` to the
 * connect request (its headers).
 */
export async function measure(ctx, server, c, t) {
  const pool = ctx.spawnLoadgens(ctx.options.loadgens ?? 1);
  const phase = { size: c.size, ...c.phase };
  try {
    await pool.connect(server, c.conns, c.connect);
    await pool.all('verify', phase);
    await pool.assertClean(`${server.label} ${c.label}: verify`);

    // Throughput: `window` in flight per connection.
    await pool.all('start', { mode: 'throughput', window: c.window, refillAt: c.refillAt, ...phase });
    await ctx.sleep(t.warmup);
    const cpu0 = server.cpuSeconds();
    const faults0 = server.minorFaults?.() ?? NaN;
    const sched0 = schedstat(server.pid);
    await pool.all('mark');
    await ctx.sleep(t.duration);
    const m1 = await pool.all('mark');
    const cpu1 = server.cpuSeconds();
    const faults1 = server.minorFaults?.() ?? NaN;
    const sched1 = schedstat(server.pid);
    await pool.all('stop');
    const messages = m1.reduce((s, m) => s + m.interval.messages, 0);
    const rate = m1.reduce((s, m) => s + m.interval.rate, 0);
    const seconds = m1[0].interval.ms / 1000;
    const cpu = cpu1 - cpu0;

    // Closed loop: 1 in flight per connection (the next message goes when the echo is in).
    await pool.all('start', { mode: 'latency', ...phase });
    const { marks: l1, cpu: lcpu, faults: lfaults, messages: latencyMessages } = await pool.measureInterval(server, ctx.sleep, t.latWarmup, t.latDuration);
    const hist = mergeHists(l1.map((m) => m.interval.hist));
    await pool.assertClean(`${server.label} ${c.label}`);

    return {
      rate,
      cpuPerMsgUs: messages > 0 ? (cpu * 1e6) / messages : NaN,
      // minor page faults per message: a run whose server faults for its reads is not comparable with one that does not
      faultsPerMsg: messages > 0 ? (faults1 - faults0) / messages : NaN,
      p50Us: histQuantile(hist, 0.5),
      p99Us: histQuantile(hist, 0.99),
      // context, kept in the JSON
      messages,
      serverBusy: cpu / seconds,
      // main thread: share of the interval on a CPU, and runnable but waiting for one
      serverLoopRun: (sched1.runNs - sched0.runNs) / 1e9 / seconds,
      serverLoopWait: (sched1.waitNs - sched0.waitNs) / 1e9 / seconds,
      loadgenBusy: Math.max(...m1.map((m) => m.interval.cpuBusy)),
      latencySamples: histCount(hist),
      // closed loop, 1 in flight: messages/s and CPU per message of the same interval as p50/p99
      latencyRate: l1.reduce((s, m) => s + m.interval.rate, 0),
      latencyCpuPerMsgUs: latencyMessages > 0 ? (lcpu * 1e6) / latencyMessages : NaN,
      latencyFaultsPerMsg: latencyMessages > 0 ? lfaults / latencyMessages : NaN,
      // bytes on the wire per message (throughput phase): client → server, server → client
      wireUpBytes: messages > 0 ? m1.reduce((s, m) => s + m.interval.wireOut, 0) / messages : NaN,
      wireDownBytes: messages > 0 ? m1.reduce((s, m) => s + m.interval.wireIn, 0) / messages : NaN,
    };
  } finally {
    await pool.close();
  }
}

export async function run(ctx) {
  const t = timing(ctx);
  const cases = [];
  // --sizes 64,4096 / --conns 50 narrow the matrix (for profiling one case).
  const sizes = ctx.options.sizes ?? SIZES;
  const connections = ctx.options.conns ?? CONNECTIONS;
  for (const size of sizes) {
    for (const conns of connections) {
      const window = windowFor(size);
      cases.push({ size, conns, window, refillAt: refillFor(window), label: `${sizeLabel(size)} × ${conns} conn` });
    }
  }
  /** results[caseIndex][target][run] */
  const results = cases.map(() => Object.fromEntries(ctx.targets.map((name) => [name, []])));

  for (let r = 0; r < ctx.runs; r++) {
    const servers = {};
    try {
      for (const target of ctx.order(r)) servers[target] = await ctx.startServer(target);
      for (const [ci, c] of cases.entries()) {
        for (const target of ctx.order(r + ci)) {
          const m = await measure(ctx, servers[target], c, t);
          results[ci][target][r] = m;
          ctx.log(`echo run ${r + 1}/${ctx.runs} ${c.label.padEnd(18)} ${servers[target].label.padEnd(10)} ` +
            `${Math.round(m.rate).toLocaleString('en-US').padStart(9)} msg/s  cpu ${m.cpuPerMsgUs.toFixed(2)} µs/msg ` +
            `faults ${m.faultsPerMsg.toFixed(1)}/msg; ` +
            `1 in flight ${Math.round(m.latencyRate).toLocaleString('en-US')} msg/s  cpu ${m.latencyCpuPerMsgUs.toFixed(2)} µs/msg ` +
            `faults ${m.latencyFaultsPerMsg.toFixed(1)}/msg  ` +
            `p50 ${m.p50Us.toFixed(0)} µs  p99 ${m.p99Us.toFixed(0)} µs  ` +
            `(server ${(m.serverBusy * 100).toFixed(0)} % CPU, loop ${(m.serverLoopRun * 100).toFixed(0)} % running ` +
            `+ ${(m.serverLoopWait * 100).toFixed(0)} % waiting for a CPU; loadgen ${(m.loadgenBusy * 100).toFixed(0)} % CPU)`);
          if (m.loadgenBusy > 0.9) {
            ctx.log(`  warning: the load generator was ${(m.loadgenBusy * 100).toFixed(0)} % busy — it may be the bottleneck`);
          }
        }
      }
    } finally {
      for (const s of Object.values(servers)) await s.stop();
    }
  }

  const rows = [];
  for (const [ci, c] of cases.entries()) {
    const pick = (key) => Object.fromEntries(ctx.targets.map((name) => [name, results[ci][name].map((m) => m[key])]));
    const extra = { size: c.size, connections: c.conns, window: c.window, refillAt: c.refillAt, timing: t, raw: results[ci] };
    const piped = `${c.label}, ${c.window} in flight`;
    const one = `${c.label}, 1 in flight`;
    rows.push(
      { case: piped, metric: 'messages/s', format: 'rate', better: 'higher', values: pick('rate'),
        target: { kind: 'ratio', op: '>=', value: 1.2 }, extra },
      { case: piped, metric: 'server CPU / message', format: 'us', better: 'lower', values: pick('cpuPerMsgUs'),
        target: { kind: 'ratio', op: '<=', value: 0.8 } },
      { case: one, metric: 'messages/s', format: 'rate', better: 'higher', values: pick('latencyRate') },
      { case: one, metric: 'server CPU / message', format: 'us', better: 'lower', values: pick('latencyCpuPerMsgUs') },
      { case: one, metric: 'p50 round trip', format: 'us', better: 'lower', values: pick('p50Us') },
      { case: one, metric: 'p99 round trip', format: 'us', better: 'lower', values: pick('p99Us') },
    );
  }
  return rows;
}
