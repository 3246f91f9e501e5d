/**
 * Suite `idle`: server memory per idle WebSocket connection at 10,000
 * connections.
 *
 * For each server (order alternating by run), in a fresh process:
 *   1. warm-up: open 100 connections, echo one 64 B message on each, close
 *      them (so that code compiled on first use is not charged to connections);
 *   2. wait `settle` ms, read VmRSS;
 *   3. open 10,000 connections (upgraded, then idle), spread over load generator
 *      processes of at most 5,000 connections each (the per-process open file cap
 *      here is 20,000);
 *   4. wait `settle` ms, check all 10,000 are still open and clean, read VmRSS;
 *   5. RSS per connection = (VmRSS after − VmRSS before) / 10,000.
 * No GC is forced (neither server gets --expose-gc); both get the same settle time.
 */
export const name = 'idle';
export const description = 'server RSS per idle connection at 10,000 connections';

export const PER_PROCESS = 5000;

export async function run(ctx) {
  const total = ctx.quick ? 2000 : (ctx.options.connections ?? 10000);
  const settle = ctx.quick ? 1500 : 3000;
  const processes = Math.max(2, Math.ceil(total / PER_PROCESS));
  const values = Object.fromEntries(ctx.targets.map((n) => [n, []]));
  const raw = Object.fromEntries(ctx.targets.map((n) => [n, []]));

  for (let r = 0; r < ctx.runs; r++) {
    for (const target of ctx.order(r)) {
      const server = await ctx.startServer(target);
      const pool = ctx.spawnLoadgens(processes);
      try {
        await pool.connect(server, 100);
        await pool.all('verify', { size: 64 });
        await pool.assertClean(`${server.label} idle warm-up`);
        await pool.all('close', { timeoutMs: 5000 });
        await ctx.sleep(settle);
        const before = server.rssKiB();

        const t0 = Date.now();
        await pool.connect(server, total, { concurrency: 50 });
        const openMs = Date.now() - t0;
        await ctx.sleep(settle);
        const after = server.rssKiB();
        const status = await pool.assertClean(`${server.label} idle`);
        const open = status.reduce((s, x) => s + x.open, 0);
        if (open !== total) throw new Error(`${server.label}: only ${open} of ${total} idle connections still open`);

        const perConn = ((after - before) * 1024) / total;
        values[target][r] = perConn;
        raw[target][r] = { rssBeforeKiB: before, rssAfterKiB: after, connections: total, openMs };
        ctx.log(`idle run ${r + 1}/${ctx.runs} ${server.label.padEnd(10)} ${total} conns: RSS ${before} → ${after} KiB ` +
          `= ${(perConn / 1024).toFixed(2)} KiB/conn (opened in ${openMs} ms)`);
      } finally {
        await server.stop();
        await pool.close({ graceful: false });
      }
    }
  }

  return [{
    case: `${total.toLocaleString('en-US')} idle conns`,
    metric: 'server RSS / connection',
    format: 'bytes',
    better: 'lower',
    values,
    target: { kind: 'absolute', op: '<=', value: 4096, of: 'gatehouse' },
    extra: { connections: total, processes, settleMs: settle, raw },
  }];
}
