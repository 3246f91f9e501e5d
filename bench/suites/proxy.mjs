/**
 * Suite `proxy`: Gatehouse as a WebSocket reverse proxy, against nginx doing
 * the same job and against a bare Node relay, in front of the same `ws` echo
 * backend — and against no proxy at all (the client talks to the backend
 * directly), which is the floor every proxy adds to.
 *
 *   client ─▶ Gatehouse (`websocket` service) ─▶ ws echo backend
 *   client ─▶ nginx (proxy_pass + Upgrade headers, one worker) ─▶ the same backend
 *   client ─▶ bare Node relay (two sockets piped, no parsing) ─▶ the same backend
 *   client ─▶ the backend directly
 *
 * Gatehouse parses, validates (masking, UTF-8, limits) and re-frames every
 * frame on both hops; nginx and the bare relay only move bytes once the
 * upgrade is done. The bare relay is what any Node process in the path pays
 * (a read, a write, a turn of the event loop per message): Gatehouse's own
 * cost is what it adds to that.
 *
 * Per run, one backend process and the three proxies are started fresh; idle
 * memory is measured first (on processes that have done nothing else yet),
 * then for each case the four setups one after the other, the order rotating
 * by run and case. Each measurement forks new load generator processes.
 *
 * Two workloads, labelled in the table:
 *   - pipelined, "32 in flight" (64 B × 50 and 4 KiB × 50 connections): each
 *     connection keeps 24–32 messages in flight; messages/s and the proxy's
 *     CPU per message (nginx: master + worker);
 *   - closed loop, "1 in flight" (64 B and 4 KiB × 1 and 50 connections): each
 *     connection sends its next message when the echo of the last one is in,
 *     as a chat message, a trade or a game move does; messages/s, the proxy's
 *     CPU per message, p50 / p99 round trip, and at one connection the p50
 *     each proxy adds over the direct p50 of the same run;
 *   - idle: the proxy's RSS per idle proxied connection between 1,000 and
 *     4,000 connections (marginal cost), and from 0 to 4,000 (nginx: the
 *     worker's RSS, which is where its connections live).
 *
 * In the table the "ws" column holds the anchor the metric names (nginx, or
 * the bare Node relay); the direct numbers are in the case text and the JSON.
 *
 * Targets: issue 5 — pipelined throughput ≥ 1.0× nginx, ≤ 10 KiB gateway RSS
 * per idle proxied connection; issue 18 — one in flight, CPU per message
 * ≤ 1.1× the bare relay's at 64 B and 4 KiB, and added p50 at one connection
 * ≤ the bare relay's + 10 µs.
 */
import { histQuantile, mergeHists, median } from '../lib/stats.mjs';
import { startNginx } from '../lib/nginx.mjs';
import { GATEHOUSE_ECHO_SERVICE, HOST } from '../lib/targets.mjs';

export const name = 'proxy';
export const description = 'reverse proxy to a ws echo backend: Gatehouse vs nginx vs a bare Node relay vs direct (pipelined and 1 in flight; CPU, latency, idle RSS)';

const PROXY_PATH = '/proxy';
const SETUPS = ['gatehouse', 'nginx', 'bare', 'direct'];
/** The anchors each Gatehouse figure is compared with, as the metric names them. */
const ANCHORS = { nginx: 'nginx', bare: 'bare Node relay' };
const PIPELINED = [
  { size: 64, conns: 50, window: 32, label: '64 B × 50 conn, 32 in flight' },
  { size: 4096, conns: 50, window: 32, label: '4 KiB × 50 conn, 32 in flight' },
];
const ONE_IN_FLIGHT = [
  { size: 64, conns: 1, label: '64 B × 1 conn, 1 in flight' },
  { size: 64, conns: 50, label: '64 B × 50 conn, 1 in flight' },
  { size: 4096, conns: 1, label: '4 KiB × 1 conn, 1 in flight' },
  { size: 4096, conns: 50, label: '4 KiB × 50 conn, 1 in flight' },
];
/** Issue 18: one in flight, the gateway's CPU per message at most this × the bare relay's. */
const CPU_VS_BARE = 1.1;
/** Issue 18: at one connection, the added p50 at most the bare relay's + this many µs. */
const ADDED_P50_VS_BARE_US = 10;

function timing(ctx) {
  const t = ctx.quick
    ? { warmup: 500, duration: 1500, idleBase: 500, idleConns: 2000, settle: 1500 }
    : { warmup: 1000, duration: 3000, idleBase: 1000, idleConns: 4000, settle: 3000 };
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
  // The bare relay passes the upgrade request through as bytes: the backend sees /echo.
  const bare = await ctx.startServer('bare', { backendPort: backend.port });
  return {
    backend,
    servers: {
      gatehouse: { ...gatehouse, label: 'Gatehouse', path: PROXY_PATH },
      nginx,
      bare: { ...bare, label: 'bare relay' },
      // Direct: the load generator talks to the backend; "the proxy" is nobody, its CPU is the backend's.
      direct: { ...backend, label: 'direct' },
    },
    async stop() {
      await Promise.all([gatehouse.stop(), nginx.stop(), bare.stop()]);
      await backend.stop();
    },
  };
}

/**
 * One measurement: `mode` 'throughput' (c.window in flight per connection)
 * or 'latency' (1 in flight, closed loop: round trips into a histogram).
 * The proxy's CPU (utime + stime) is read around the same interval.
 */
async function measure(ctx, server, c, t, mode) {
  const pool = ctx.spawnLoadgens(mode === 'throughput' ? (ctx.options.loadgens ?? 1) : 1);
  try {
    await pool.connect(server, c.conns);
    await pool.all('verify', { size: c.size });
    await pool.assertClean(`${server.label} ${c.label}: verify`);
    await pool.all('start', mode === 'throughput'
      ? { mode, size: c.size, window: c.window, refillAt: Math.max(1, c.window / 4) }
      : { mode, size: c.size });
    const { marks: m1, cpu, messages } = await pool.measureInterval(server, ctx.sleep, t.warmup, t.duration);
    await pool.assertClean(`${server.label} ${c.label}`);
    const hist = mode === 'latency' ? mergeHists(m1.map((m) => m.interval.hist)) : null;
    return {
      rate: m1.reduce((s, m) => s + m.interval.rate, 0),
      cpuPerMsgUs: messages > 0 ? (cpu * 1e6) / messages : NaN,
      p50Us: hist ? histQuantile(hist, 0.5) : NaN,
      p99Us: hist ? histQuantile(hist, 0.99) : NaN,
      messages,
      loadgenBusy: Math.max(...m1.map((m) => m.interval.cpuBusy)),
    };
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

function logLine(ctx, r, c, s, m) {
  ctx.log(`proxy run ${r + 1}/${ctx.runs} ${c.label.padEnd(30)} ${s.padEnd(9)} ` +
    `${Math.round(m.rate).toLocaleString('en-US').padStart(9)} msg/s  cpu ${m.cpuPerMsgUs.toFixed(2)} µs/msg` +
    `${Number.isFinite(m.p50Us) ? `  p50 ${m.p50Us.toFixed(1)} µs  p99 ${m.p99Us.toFixed(1)} µs` : ''}` +
    `${m.loadgenBusy > 0.9 ? `  (loadgen ${(m.loadgenBusy * 100).toFixed(0)} % busy)` : ''}`);
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
      const cases = [...PIPELINED.map((c) => ({ ...c, mode: 'throughput' })), ...ONE_IN_FLIGHT.map((c) => ({ ...c, mode: 'latency' }))];
      for (const [ci, c] of cases.entries()) {
        for (const s of rotate(r + ci)) {
          const m = await measure(ctx, setups.servers[s], c, t, c.mode);
          put(`rate ${c.label}`, s, r, m.rate);
          put(`cpu ${c.label}`, s, r, m.cpuPerMsgUs);
          if (c.mode === 'latency') {
            put(`p50 ${c.label}`, s, r, m.p50Us);
            put(`p99 ${c.label}`, s, r, m.p99Us);
          }
          logLine(ctx, r, c, s, m);
        }
        if (c.mode === 'latency') {
          // Added latency = the proxy's p50 − the direct p50 of the same run.
          for (const s of SETUPS) put(`added ${c.label}`, s, r, values[`p50 ${c.label}`][s][r] - values[`p50 ${c.label}`].direct[r]);
        }
      }
    } finally {
      await setups.stop();
    }
  }

  const vs = (key, anchor) => ({ gatehouse: values[key].gatehouse, ws: values[key][anchor] });
  const direct = (key) => median(values[key].direct);
  const fmtRate = (v) => Math.round(v).toLocaleString('en-US');
  const extra = { setups: SETUPS, timing: t, raw: values };

  const rows = [];
  for (const c of PIPELINED) {
    rows.push(
      { case: `${c.label} (direct ${fmtRate(direct(`rate ${c.label}`))})`, metric: 'messages/s vs nginx', format: 'rate', better: 'higher',
        values: vs(`rate ${c.label}`, 'nginx'), target: { kind: 'ratio', op: '>=', value: 1.0 }, extra },
      { case: c.label, metric: 'proxy CPU / message vs nginx', format: 'us', better: 'lower', values: vs(`cpu ${c.label}`, 'nginx'), extra },
      { case: c.label, metric: `proxy CPU / message vs ${ANCHORS.bare}`, format: 'us', better: 'lower', values: vs(`cpu ${c.label}`, 'bare'), extra },
    );
  }
  for (const c of ONE_IN_FLIGHT) {
    rows.push(
      { case: `${c.label} (direct ${fmtRate(direct(`rate ${c.label}`))})`, metric: 'messages/s vs nginx', format: 'rate', better: 'higher',
        values: vs(`rate ${c.label}`, 'nginx'), extra },
      { case: c.label, metric: `messages/s vs ${ANCHORS.bare}`, format: 'rate', better: 'higher', values: vs(`rate ${c.label}`, 'bare'), extra },
      { case: c.label, metric: 'proxy CPU / message vs nginx', format: 'us', better: 'lower', values: vs(`cpu ${c.label}`, 'nginx'), extra },
      { case: c.label, metric: `proxy CPU / message vs ${ANCHORS.bare}`, format: 'us', better: 'lower', values: vs(`cpu ${c.label}`, 'bare'),
        target: { kind: 'ratio', op: '<=', value: CPU_VS_BARE }, extra },
      { case: `${c.label} (direct ${direct(`p50 ${c.label}`).toFixed(1)} µs)`, metric: 'p50 round trip vs nginx', format: 'us', better: 'lower',
        values: vs(`p50 ${c.label}`, 'nginx'), extra },
    );
    if (c.conns === 1) {
      rows.push(
        { case: `${c.label} (direct ${direct(`p99 ${c.label}`).toFixed(1)} µs)`, metric: 'p99 round trip vs nginx', format: 'us', better: 'lower',
          values: vs(`p99 ${c.label}`, 'nginx'), extra },
        { case: c.label, metric: 'added p50 over direct vs nginx', format: 'us', better: 'lower', values: vs(`added ${c.label}`, 'nginx'), extra },
        { case: c.label, metric: `added p50 over direct vs ${ANCHORS.bare}`, format: 'us', better: 'lower', values: vs(`added ${c.label}`, 'bare'),
          target: { kind: 'difference', op: '<=', value: ADDED_P50_VS_BARE_US }, extra },
      );
    }
  }
  rows.push(
    { case: `idle proxied conns ${t.idleBase.toLocaleString('en-US')} → ${t.idleConns.toLocaleString('en-US')}`, metric: 'proxy RSS / connection (marginal) vs nginx',
      format: 'bytes', better: 'lower', values: vs('idle', 'nginx'), target: { kind: 'absolute', op: '<=', value: 10 * 1024, of: 'gatehouse' }, extra },
    { case: `idle proxied conns 0 → ${t.idleConns.toLocaleString('en-US')}`, metric: 'proxy RSS / connection (from empty) vs nginx',
      format: 'bytes', better: 'lower', values: vs('idleFromEmpty', 'nginx'), extra },
  );
  return rows;
}
