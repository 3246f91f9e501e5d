/**
 * Suite `proxy`: Gatehouse as a WebSocket reverse proxy, against nginx doing
 * the same job, in front of the same `ws` echo backend — and against no proxy
 * at all (the client talks to the backend directly), which is the floor both
 * proxies add to.
 *
 *   client ─▶ Gatehouse (`websocket` service) ─▶ ws echo backend
 *   client ─▶ nginx (proxy_pass + Upgrade headers)  ─▶ the same backend
 *   client ─▶ the backend directly
 *
 * Gatehouse parses, validates (masking, UTF-8, limits) and re-frames every
 * frame on both hops; nginx only tunnels bytes once the upgrade is done.
 *
 * Per run, one backend process and both proxies are started fresh; idle
 * memory is measured first (on processes that have done nothing else yet),
 * then for each case the three setups one after the other, the order rotating
 * by run and case. Each measurement forks new load generator processes.
 *
 * Cases and metrics:
 *   - throughput (64 B × 50 connections, 4 KiB × 50 connections): messages/s,
 *     and the proxy's CPU per message (nginx: master + worker);
 *   - one connection, 64 B, one message in flight: p50 and p99 round trip, and
 *     the latency each proxy adds over the direct p50;
 *   - idle: the proxy's RSS per idle proxied connection between 1,000 and
 *     4,000 connections (marginal cost), and from 0 to 4,000 (nginx: the
 *     worker's RSS, which is where its connections live).
 *
 * In the table the "ws" column holds nginx (the comparison the targets are
 * about); the direct numbers are in the case text and the JSON.
 *
 * Targets (issue 5): throughput ≥ 1.0× nginx; added p50 at one connection ≤
 * nginx's; ≤ 10 KiB gateway RSS per idle proxied connection.
 */
import { histQuantile, mergeHists, median } from '../lib/stats.mjs';
import { startNginx } from '../lib/nginx.mjs';
import { GATEHOUSE_ECHO_SERVICE, HOST } from '../lib/targets.mjs';

export const name = 'proxy';
export const description = 'reverse proxy to a ws echo backend: Gatehouse vs nginx vs direct (throughput, latency, CPU, idle RSS)';

const PROXY_PATH = '/proxy';
const SETUPS = ['gatehouse', 'nginx', 'direct'];
const THROUGHPUT_CASES = [
  { size: 64, conns: 50, window: 32, label: '64 B × 50 conn' },
  { size: 4096, conns: 50, window: 32, label: '4 KiB × 50 conn' },
];
const LATENCY_CASE = { size: 64, conns: 1, label: '64 B × 1 conn' };

function timing(ctx) {
  const t = ctx.quick
    ? { warmup: 500, duration: 1500, latWarmup: 300, latDuration: 1000, idleBase: 500, idleConns: 2000, settle: 1500 }
    : { warmup: 1000, duration: 3000, latWarmup: 500, latDuration: 2000, idleBase: 1000, idleConns: 4000, settle: 3000 };
  if (ctx.options.duration) t.duration = ctx.options.duration * 1000;
  return t;
}

async function startSetups(ctx) {
  const backend = await ctx.startServer('ws');
  const backendUrl = `ws://${HOST}:${backend.port}/echo`;
  const gatehouse = await ctx.startServer('gatehouse', {
    config: {
      services: {
        proxy: { ...GATEHOUSE_ECHO_SERVICE, path: PROXY_PATH, type: 'websocket', backend: backendUrl },
      },
    },
  });
  const nginx = await startNginx(backend.port, { path: PROXY_PATH });
  return {
    backend,
    servers: {
      gatehouse: { ...gatehouse, label: 'Gatehouse', path: PROXY_PATH },
      nginx,
      // Direct: the load generator talks to the backend; "the proxy" is nobody, its CPU is the backend's.
      direct: { ...backend, label: 'direct' },
    },
    async stop() {
      await Promise.all([gatehouse.stop(), nginx.stop()]);
      await backend.stop();
    },
  };
}

async function measureThroughput(ctx, server, c, t) {
  const pool = ctx.spawnLoadgens(ctx.options.loadgens ?? 1);
  try {
    await pool.connect(server, c.conns);
    await pool.all('verify', { size: c.size });
    await pool.assertClean(`${server.label} ${c.label}: verify`);
    await pool.all('start', { mode: 'throughput', size: c.size, window: c.window, refillAt: Math.max(1, c.window / 4) });
    await ctx.sleep(t.warmup);
    const cpu0 = server.cpuSeconds();
    await pool.all('mark');
    await ctx.sleep(t.duration);
    const m1 = await pool.all('mark');
    const cpu1 = server.cpuSeconds();
    await pool.all('stop');
    await pool.assertClean(`${server.label} ${c.label}`);
    const messages = m1.reduce((s, m) => s + m.interval.messages, 0);
    return {
      rate: m1.reduce((s, m) => s + m.interval.rate, 0),
      cpuPerMsgUs: messages > 0 ? ((cpu1 - cpu0) * 1e6) / messages : NaN,
      messages,
      loadgenBusy: Math.max(...m1.map((m) => m.interval.cpuBusy)),
    };
  } finally {
    await pool.close();
  }
}

async function measureLatency(ctx, server, c, t) {
  const pool = ctx.spawnLoadgens(1);
  try {
    await pool.connect(server, c.conns);
    await pool.all('verify', { size: c.size });
    await pool.all('start', { mode: 'latency', size: c.size });
    await ctx.sleep(t.latWarmup);
    await pool.all('mark');
    await ctx.sleep(t.latDuration);
    const l1 = await pool.all('mark');
    await pool.all('stop');
    await pool.assertClean(`${server.label} ${c.label} latency`);
    const hist = mergeHists(l1.map((m) => m.interval.hist));
    return { p50Us: histQuantile(hist, 0.5), p99Us: histQuantile(hist, 0.99) };
  } finally {
    await pool.close();
  }
}

/**
 * RSS per idle proxied connection, as a marginal cost: RSS after `idleBase`
 * connections, then after `idleConns`, divided by the difference. One-time
 * growth (the V8 young generation expanding to its maximum under the first
 * burst of handshakes, code compiled on first use) happens before the first
 * reading and is not charged to connections; the plain before/after figure
 * (from zero connections) is kept in the JSON too.
 */
async function measureIdle(ctx, server, t) {
  const pool = ctx.spawnLoadgens(1);
  try {
    await pool.connect(server, 50);
    await pool.all('verify', { size: 64 });
    await pool.all('close', { timeoutMs: 5000 });
    await ctx.sleep(t.settle);
    const empty = server.rssKiB();
    await pool.connect(server, t.idleBase, { concurrency: 50 });
    await ctx.sleep(t.settle);
    const base = server.rssKiB();
    await pool.connect(server, t.idleConns - t.idleBase, { concurrency: 50 });
    await ctx.sleep(t.settle);
    const full = server.rssKiB();
    const status = await pool.assertClean(`${server.label} idle`);
    const open = status.reduce((s, x) => s + x.open, 0);
    if (open !== t.idleConns) throw new Error(`${server.label}: only ${open} of ${t.idleConns} idle connections still open`);
    return {
      perConnBytes: ((full - base) * 1024) / (t.idleConns - t.idleBase),
      fromEmptyBytes: ((full - empty) * 1024) / t.idleConns,
      emptyKiB: empty, baseKiB: base, fullKiB: full,
    };
  } finally {
    await pool.close({ graceful: false });
  }
}

export async function run(ctx) {
  const t = timing(ctx);
  const rotate = (k) => SETUPS.map((_, i) => SETUPS[(i + k) % SETUPS.length]);
  /** per metric key → setup → per-run values */
  const values = {};
  const put = (key, setup, r, v) => {
    values[key] ??= Object.fromEntries(SETUPS.map((s) => [s, []]));
    values[key][setup][r] = v;
  };

  for (let r = 0; r < ctx.runs; r++) {
    const setups = await startSetups(ctx);
    try {
      // Idle memory first, on processes that have done nothing else yet.
      for (const s of ['gatehouse', 'nginx']) {
        const m = await measureIdle(ctx, setups.servers[s], t);
        put('idle', s, r, m.perConnBytes);
        put('idleFromEmpty', s, r, m.fromEmptyBytes);
        ctx.log(`proxy run ${r + 1}/${ctx.runs} idle ${s.padEnd(9)} RSS ${m.emptyKiB} KiB (0) → ${m.baseKiB} KiB (${t.idleBase}) → ` +
          `${m.fullKiB} KiB (${t.idleConns} conns): ${(m.perConnBytes / 1024).toFixed(2)} KiB/conn marginal, ` +
          `${(m.fromEmptyBytes / 1024).toFixed(2)} KiB/conn from empty`);
      }
      for (const [ci, c] of THROUGHPUT_CASES.entries()) {
        for (const s of rotate(r + ci)) {
          const m = await measureThroughput(ctx, setups.servers[s], c, t);
          put(`rate ${c.label}`, s, r, m.rate);
          put(`cpu ${c.label}`, s, r, m.cpuPerMsgUs);
          ctx.log(`proxy run ${r + 1}/${ctx.runs} ${c.label.padEnd(16)} ${s.padEnd(9)} ` +
            `${Math.round(m.rate).toLocaleString('en-US').padStart(9)} msg/s  cpu ${m.cpuPerMsgUs.toFixed(2)} µs/msg` +
            `${m.loadgenBusy > 0.9 ? `  (loadgen ${(m.loadgenBusy * 100).toFixed(0)} % busy)` : ''}`);
        }
      }
      for (const s of rotate(r + 1)) {
        const m = await measureLatency(ctx, setups.servers[s], LATENCY_CASE, t);
        put('p50', s, r, m.p50Us);
        put('p99', s, r, m.p99Us);
        ctx.log(`proxy run ${r + 1}/${ctx.runs} ${LATENCY_CASE.label.padEnd(16)} ${s.padEnd(9)} p50 ${m.p50Us.toFixed(1)} µs  p99 ${m.p99Us.toFixed(1)} µs`);
      }
    } finally {
      await setups.stop();
    }
  }

  // Added latency = the proxy's p50 − the direct p50 of the same run.
  for (const s of ['gatehouse', 'nginx']) {
    values.added = values.added ?? Object.fromEntries(SETUPS.map((x) => [x, []]));
    values.added[s] = values.p50[s].map((v, i) => v - values.p50.direct[i]);
  }
  const vs = (key) => ({ gatehouse: values[key].gatehouse, ws: values[key].nginx });
  const direct = (key) => median(values[key].direct);
  const fmtRate = (v) => Math.round(v).toLocaleString('en-US');
  const extra = { setups: SETUPS, timing: t, raw: values };

  const rows = [];
  for (const c of THROUGHPUT_CASES) {
    rows.push(
      { case: `${c.label} (direct ${fmtRate(direct(`rate ${c.label}`))})`, metric: 'messages/s vs nginx', format: 'rate', better: 'higher',
        values: vs(`rate ${c.label}`), target: { kind: 'ratio', op: '>=', value: 1.0 }, extra },
      { case: c.label, metric: 'proxy CPU / message vs nginx', format: 'us', better: 'lower', values: vs(`cpu ${c.label}`), extra },
    );
  }
  rows.push(
    { case: `${LATENCY_CASE.label} (direct ${direct('p50').toFixed(1)} µs)`, metric: 'p50 round trip vs nginx', format: 'us', better: 'lower', values: vs('p50'), extra },
    { case: `${LATENCY_CASE.label} (direct ${direct('p99').toFixed(1)} µs)`, metric: 'p99 round trip vs nginx', format: 'us', better: 'lower', values: vs('p99'), extra },
    { case: LATENCY_CASE.label, metric: 'added p50 over direct vs nginx', format: 'us', better: 'lower', values: vs('added'),
      target: { kind: 'ratio', op: '<=', value: 1.0 }, extra },
    { case: `idle proxied conns ${t.idleBase.toLocaleString('en-US')} → ${t.idleConns.toLocaleString('en-US')}`, metric: 'proxy RSS / connection (marginal) vs nginx',
      format: 'bytes', better: 'lower', values: vs('idle'), target: { kind: 'absolute', op: '<=', value: 10 * 1024, of: 'gatehouse' }, extra },
    { case: `idle proxied conns 0 → ${t.idleConns.toLocaleString('en-US')}`, metric: 'proxy RSS / connection (from empty) vs nginx',
      format: 'bytes', better: 'lower', values: vs('idleFromEmpty'), extra },
  );
  return rows;
}
