/**
 * Suite `compression`: permessage-deflate echo of 4 KiB JSON-like text
 * messages, Gatehouse (`compression: true`) against `ws` with the same
 * settings (`bench/servers/ws-echo.mjs --deflate same`: no context takeover
 * either way, 15-bit windows, memLevel 8, level 6, threshold 1 KiB, 8 zlib
 * operations at once), × 1 and 50 connections.
 *
 * Both servers get the same offer and the same pre-compressed message (the
 * load generator compresses once: without client context takeover one
 * compressed payload is valid for every message); each echo comes back
 * compressed by the server. Per server and case: messages/s and server CPU
 * per message (throughput phase, a window of messages in flight), the p50
 * round trip (one in flight), and the bytes on the wire per message each way
 * (frames as the sockets carried them), against the 4,096 bytes of the message.
 */
import { histQuantile, mergeHists } from '../lib/stats.mjs';
import { ECHO_PATH, GATEHOUSE_ECHO_SERVICE } from '../lib/targets.mjs';

export const name = 'compression';
export const description = 'permessage-deflate echo of 4 KiB JSON-like text: msg/s, CPU/message, bytes on the wire; same settings both';

const SIZE = 4096;
const CONNECTIONS = [1, 50];
const WINDOW = 32;
const OFFER = 'permessage-deflate; client_no_context_takeover; server_no_context_takeover; client_max_window_bits';

function timing(ctx) {
  const t = ctx.quick
    ? { warmup: 500, duration: 1500, latWarmup: 300, latDuration: 1000 }
    : { warmup: 1000, duration: 3000, latWarmup: 500, latDuration: 2000 };
  if (ctx.options.duration) t.duration = ctx.options.duration * 1000;
  return t;
}

async function measure(ctx, server, conns, t) {
  const pool = ctx.spawnLoadgens(ctx.options.loadgens ?? 1);
  const phase = { size: SIZE, deflate: true, text: true };
  try {
    await pool.connect(server, conns, { headers: { 'Sec-WebSocket-Extensions': OFFER } });
    await pool.all('verify', phase);
    await pool.assertClean(`${server.label} ${conns} conn: verify`);

    await pool.all('start', { mode: 'throughput', window: WINDOW, refillAt: WINDOW / 4, ...phase });
    await ctx.sleep(t.warmup);
    const cpu0 = server.cpuSeconds();
    await pool.all('mark');
    await ctx.sleep(t.duration);
    const m1 = await pool.all('mark');
    const cpu1 = server.cpuSeconds();
    await pool.all('stop');
    const messages = m1.reduce((s, m) => s + m.interval.messages, 0);
    const wireIn = m1.reduce((s, m) => s + m.interval.wireIn, 0);
    const wireOut = m1.reduce((s, m) => s + m.interval.wireOut, 0);

    await pool.all('start', { mode: 'latency', ...phase });
    await ctx.sleep(t.latWarmup);
    await pool.all('mark');
    await ctx.sleep(t.latDuration);
    const l1 = await pool.all('mark');
    await pool.all('stop');
    await pool.assertClean(`${server.label} ${conns} conn`);
    const hist = mergeHists(l1.map((m) => m.interval.hist));
    return {
      rate: m1.reduce((s, m) => s + m.interval.rate, 0),
      cpuPerMsgUs: messages > 0 ? ((cpu1 - cpu0) * 1e6) / messages : NaN,
      p50Us: histQuantile(hist, 0.5),
      // Both directions, per message: what the client sent, what the server sent back.
      wireUpBytes: messages > 0 ? wireOut / messages : NaN,
      wireDownBytes: messages > 0 ? wireIn / messages : NaN,
      messages,
      loadgenBusy: Math.max(...m1.map((m) => m.interval.cpuBusy)),
    };
  } finally {
    await pool.close();
  }
}

export async function run(ctx) {
  const t = timing(ctx);
  const connections = ctx.options.conns ?? CONNECTIONS;
  const results = connections.map(() => Object.fromEntries(ctx.targets.map((n) => [n, []])));
  const extra = {
    gatehouse: { config: { services: { echo: { path: ECHO_PATH, type: 'echo', ...GATEHOUSE_ECHO_SERVICE, compression: true } } } },
    ws: { wsArgs: ['--deflate', 'same'] },
  };
  for (let r = 0; r < ctx.runs; r++) {
    const servers = {};
    try {
      for (const target of ctx.order(r)) servers[target] = await ctx.startServer(target, extra[target]);
      for (const [ci, conns] of connections.entries()) {
        for (const target of ctx.order(r + ci)) {
          const m = await measure(ctx, servers[target], conns, t);
          results[ci][target][r] = m;
          ctx.log(`compression run ${r + 1}/${ctx.runs} 4 KiB JSON × ${String(conns).padEnd(3)} conn ${servers[target].label.padEnd(10)} ` +
            `${Math.round(m.rate).toLocaleString('en-US').padStart(8)} msg/s  cpu ${m.cpuPerMsgUs.toFixed(1)} µs/msg  p50 ${m.p50Us.toFixed(0)} µs  ` +
            `wire ${m.wireUpBytes.toFixed(0)} B up / ${m.wireDownBytes.toFixed(0)} B down per message (loadgen ${(m.loadgenBusy * 100).toFixed(0)} % CPU)`);
        }
      }
    } finally {
      for (const s of Object.values(servers)) await s.stop();
    }
  }
  const rows = [];
  for (const [ci, conns] of connections.entries()) {
    const pick = (key) => Object.fromEntries(ctx.targets.map((n) => [n, results[ci][n].map((m) => m[key])]));
    const label = `4 KiB JSON deflate × ${conns} conn`;
    const extraRow = { size: SIZE, connections: conns, window: WINDOW, offer: OFFER, timing: t, raw: results[ci] };
    rows.push(
      { case: label, metric: 'messages/s', format: 'rate', better: 'higher', values: pick('rate'), extra: extraRow },
      { case: label, metric: 'server CPU / message', format: 'us', better: 'lower', values: pick('cpuPerMsgUs'),
        target: { kind: 'ratio', op: '<=', value: 1 } },
      { case: label, metric: 'p50 round trip', format: 'us', better: 'lower', values: pick('p50Us') },
      { case: label, metric: 'bytes on the wire, server → client', format: 'bytes', better: 'lower', values: pick('wireDownBytes') },
    );
  }
  return rows;
}
