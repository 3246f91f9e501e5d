/**
 * What the inspector suites (mqtt, stomp) share: one Gatehouse serves, for
 * each case, an inspected and a passthrough service in front of the same
 * stand-in broker; each setup is measured in the same run, in alternating
 * order, closed loop (one message in flight per connection) after the
 * protocol's opening exchange. The metric is Gatehouse's CPU per message,
 * the inspector in the "Gatehouse" column, the passthrough in the other,
 * with the target CPU/message ≤ 1.15× (issues 13 and 14).
 */
import { median } from './stats.mjs';

export const SETUPS = ['inspect', 'pass'];

function timing(ctx) {
  const t = ctx.quick ? { warmup: 500, duration: 1500 } : { warmup: 1000, duration: 3000 };
  if (ctx.options.duration) t.duration = ctx.options.duration * 1000;
  return t;
}

/**
 * One setup of one case: `conns` connections to `path` with `exchange.subprotocol`,
 * `exchange.hello` on each (awaiting one answer), `exchange.verify` if given
 * (an echo returns it byte for byte), then `exchange.message` in a closed loop.
 */
async function measure(ctx, server, path, c, t, exchange) {
  const pool = ctx.spawnLoadgens(1);
  try {
    await pool.connect({ ...server, path }, c.conns, { headers: { 'Sec-WebSocket-Protocol': exchange.subprotocol } });
    await pool.all('hello', { hex: exchange.hello.toString('hex') });
    if (exchange.verify) await pool.all('verify', { payloadHex: exchange.message.toString('hex') });
    await pool.assertClean(`${path} ${c.label}: opening exchange`);
    await pool.all('start', { mode: 'latency', payloadHex: exchange.message.toString('hex'), anyType: exchange.anyType ?? false });
    const { marks, cpu, messages } = await pool.measureInterval(server, ctx.sleep, t.warmup, t.duration);
    await pool.assertClean(`${path} ${c.label}`);
    return {
      rate: marks.reduce((s, m) => s + m.interval.rate, 0),
      cpuPerMsgUs: messages > 0 ? (cpu * 1e6) / messages : NaN,
    };
  } finally {
    await pool.close();
  }
}

/**
 * Runs `ctx.runs` rounds. `start()` starts the backends and Gatehouse for a
 * round and resolves with `{ gatehouse, stop }`; `pathOf(c, setup)` is the
 * service's path for a case and setup. Returns the report's rows per case.
 */
export async function inspectorVsPassthrough(ctx, { suite, cases, exchange, start, pathOf }) {
  const t = timing(ctx);
  const values = {};
  const put = (key, setup, v) => {
    values[key] ??= { inspect: [], pass: [] };
    values[key][setup].push(v);
  };
  for (let r = 0; r < ctx.runs; r++) {
    const { gatehouse, stop } = await start();
    try {
      for (const [k, c] of cases.entries()) {
        const order = (r + k) % 2 === 0 ? SETUPS : [...SETUPS].reverse();
        for (const setup of order) {
          const m = await measure(ctx, gatehouse, pathOf(c, setup), c, t, exchange);
          ctx.log(`${suite} run ${r + 1}: ${setup.padEnd(7)} ${c.label.padEnd(34)} ${Math.round(m.rate).toLocaleString('en-US').padStart(7)} msg/s  cpu ${m.cpuPerMsgUs.toFixed(1)} µs/msg`);
          put(`cpu ${c.label}`, setup, m.cpuPerMsgUs);
          put(`rate ${c.label}`, setup, m.rate);
        }
      }
    } finally {
      await stop();
    }
  }
  const vs = (key) => ({ gatehouse: values[key].inspect, ws: values[key].pass });
  const labels = { gatehouse: 'inspector', ws: 'passthrough' };
  return cases.flatMap((c) => [
    { case: c.label, metric: 'messages/s, inspector vs passthrough', labels, format: 'rate', better: 'higher', values: vs(`rate ${c.label}`) },
    { case: c.label, metric: 'server CPU / message, inspector vs passthrough', labels, format: 'us', better: 'lower', values: vs(`cpu ${c.label}`),
      target: { kind: 'ratio', op: '<=', value: 1.15 }, extra: { medianPassUs: median(values[`cpu ${c.label}`].pass) } },
  ]);
}
