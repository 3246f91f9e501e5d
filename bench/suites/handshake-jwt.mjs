/**
 * Suite `handshake-jwt`: new WebSocket connections per second when every
 * handshake carries a JWT (`Authorization: Bearer`) that the server verifies —
 * RS256 and ES256, keys loaded once (cached), signature + iss + aud + exp.
 *
 * Gatehouse: a service per algorithm with the `jwt` method and a local PEM key.
 * Baseline: `ws` doing the same checks in `verifyClient` with `jose`
 * (bench/servers/ws-jwt-echo.mjs).
 *
 * Per run and server (order alternating): a fresh server process, one load
 * generator process; warm-up of `warmup` handshakes (closed again), then
 * `count` handshakes at concurrency 50, timed from the first SYN to the last
 * 101: rate = count / elapsed. The connections are then closed.
 *
 * The warm-up is what makes this a steady-state figure: V8 keeps compiling
 * (and deoptimizing, once close paths run) the handshake code of both servers
 * for the first few thousand connections. With 200 warm-up handshakes the
 * window measured mostly that compilation (both servers' CPU per handshake
 * fell by 10–25 % with 3,000), which a gateway pays once per process, not per
 * connection. 3,000 opened and closed is about the 1 s warm-up of the
 * `handshake` suite at its rate. A second row gives
 * the server's CPU time per handshake over the same interval, which stays
 * meaningful on a machine shared with other work (wall-clock rates do not).
 * Target: Gatehouse ≥ 1.0× ws (issue 4).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { cpuSeconds } from '../lib/proc.mjs';
import { GATEHOUSE_ECHO_SERVICE, HOST, ROOT } from '../lib/targets.mjs';

export const name = 'handshake-jwt';
export const description = 'new connections/s with JWT authentication (RS256, ES256; keys cached) vs ws + jose in verifyClient';

const ISSUER = 'https://bench.gatehouse.test';
const AUDIENCE = 'bench';
const ALGS = [['RS256', '/jwt-rs'], ['ES256', '/jwt-es']];

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, HOST, () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

/** The ws + jose baseline, started like the runner's targets (own process, ready when it says so). */
async function startWsJwt(keyArgs) {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'bench', 'servers', 'ws-jwt-echo.mjs'),
    '--host', HOST, '--port', String(port), '--issuer', ISSUER, '--audience', AUDIENCE, ...keyArgs], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let errText = '';
  child.stderr.on('data', (d) => { errText = (errText + d).slice(-4096); });
  await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => { out += d; if (out.includes('"listening"')) resolve(); });
    child.once('exit', (code) => reject(new Error(`ws-jwt-echo exited (${code}) before listening:\n${errText}`)));
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    target: 'ws', label: 'ws+jose', host: HOST, port, path: '/',
    cpuSeconds: () => cpuSeconds(child.pid),
    async stop() { child.kill('SIGTERM'); const t = setTimeout(() => child.kill('SIGKILL'), 5000); await exited; clearTimeout(t); },
  };
}

export async function run(ctx) {
  const count = ctx.quick ? 500 : 3000;
  const warmup = ctx.quick ? 200 : 3000;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-bench-jwt-'));
  try {
    const tokens = {};
    const keyArgs = [];
    const services = {};
    for (const [alg, route] of ALGS) {
      const { publicKey, privateKey } = await generateKeyPair(alg);
      const pem = path.join(dir, `${alg}.pem`);
      writeFileSync(pem, await exportSPKI(publicKey));
      keyArgs.push('--key', `${route}=${alg}:${pem}`);
      tokens[alg] = await new SignJWT({ roles: ['bench'] }).setProtectedHeader({ alg }).setSubject('bench-user')
        .setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime('2h').sign(privateKey);
      services[`jwt_${alg.toLowerCase()}`] = {
        ...GATEHOUSE_ECHO_SERVICE,
        path: route,
        type: 'echo',
        // Scalars, not one-element lists: the runner's small YAML writer handles lists of objects only.
        auth: { methods: [{ type: 'jwt', issuers: [{ issuer: ISSUER, audience: AUDIENCE, algorithms: alg, key_files: pem }] }] },
      };
    }

    const rows = [];
    for (const [alg, route] of ALGS) {
      const headers = { Authorization: `Bearer ${tokens[alg]}` };
      const values = Object.fromEntries(ctx.targets.map((n) => [n, []]));
      const cpu = Object.fromEntries(ctx.targets.map((n) => [n, []]));
      for (let r = 0; r < ctx.runs; r++) {
        for (const target of ctx.order(r)) {
          const server = target === 'gatehouse'
            ? { ...(await ctx.startServer('gatehouse', { config: { services } })), path: route }
            : { ...(await startWsJwt(keyArgs)), path: route };
          const pool = ctx.spawnLoadgens(1);
          try {
            await pool.connect(server, warmup, { concurrency: 50, headers });
            await pool.all('close', { timeoutMs: 5000 });
            const cpu0 = server.cpuSeconds();
            const t0 = process.hrtime.bigint();
            await pool.connect(server, count, { concurrency: 50, headers });
            const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
            const cpuUs = ((server.cpuSeconds() - cpu0) * 1e6) / count;
            values[target][r] = count / seconds;
            cpu[target][r] = cpuUs;
            ctx.log(`handshake-jwt ${alg} run ${r + 1}/${ctx.runs} ${server.label.padEnd(10)} ${count} handshakes in ${seconds.toFixed(2)} s = ${Math.round(count / seconds)}/s, server CPU ${cpuUs.toFixed(0)} µs each`);
            await pool.all('close', { timeoutMs: 5000 });
          } finally {
            await pool.close({ graceful: false });
            await server.stop();
          }
        }
      }
      rows.push({
        case: `JWT ${alg} (Bearer, keys cached)`,
        metric: 'new connections/s',
        format: 'rate',
        better: 'higher',
        values,
        target: { kind: 'ratio', op: '>=', value: 1.0 },
        extra: { handshakes: count, warmup, concurrency: 50, tokenBytes: tokens[alg].length },
      });
      rows.push({
        case: `JWT ${alg} (Bearer, keys cached)`,
        metric: 'server CPU / handshake',
        format: 'us',
        better: 'lower',
        values: cpu,
        target: { kind: 'ratio', op: '<=', value: 1.0 },
      });
    }
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
