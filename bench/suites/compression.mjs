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
import { ECHO_PATH, GATEHOUSE_ECHO_SERVICE } from '../lib/targets.mjs';
import { measure, timing } from './echo.mjs';

export const name = 'compression';
export const description = 'permessage-deflate echo of 4 KiB JSON-like text: msg/s, CPU/message, bytes on the wire; same settings both';

const SIZE = 4096;
const CONNECTIONS = [1, 50];
const WINDOW = 32;
const OFFER = 'permessage-deflate; client_no_context_takeover; server_no_context_takeover; client_max_window_bits';

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
          const c = {
            size: SIZE, conns, window: WINDOW, refillAt: WINDOW / 4, label: `4 KiB JSON × ${conns} conn`,
            phase: { deflate: true, text: true }, connect: { headers: { 'Sec-WebSocket-Extensions': OFFER } },
          };
          const m = await measure(ctx, servers[target], c, t);
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
