/**
 * Drain and reload on the real process (`gatehouse start --config FILE` as a
 * child): SIGTERM closes clients with 1001 and backends cleanly and exits
 * within the drain timeout; SIGHUP applies a new config to new connections,
 * leaves open ones untouched, and refuses an invalid config with a log line.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startRawBackend, startWsBackend, type RawBackend, type WsBackend } from './helpers/backends.js';
import { closedOf, openClient, refusedStatus, roundTrip } from './helpers/clients.js';
import { limitsYaml, nonBrowserYaml } from './helpers/config.js';
import { startGatewayProcess, type GatewayProcess } from './helpers/gateway-process.js';

/** Completes a WebSocket handshake on a raw socket, then reads and ignores everything (never answers a Close). */
async function deafClient(port: number, path: string): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  let head = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (c: Buffer): void => {
      head += c.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        socket.removeListener('data', onData);
        if (head.startsWith('HTTP/1.1 101')) resolve(); else reject(new Error(head.split('\r\n')[0]));
      }
    };
    socket.on('data', onData);
  });
  socket.resume();
  return socket;
}

describe('drain on SIGTERM (real process)', () => {
  let backend: WsBackend;
  let tcpBackend: RawBackend;
  let gw: GatewayProcess;

  before(async () => {
    backend = await startWsBackend();
    tcpBackend = await startRawBackend((s) => s.pipe(s));
    gw = await startGatewayProcess(`
listen: [{ host: 127.0.0.1, port: 0 }]
${limitsYaml()}shutdown: { drain_timeout: 2s }
services:
  ws:
    path: /ws
    type: websocket
    backend: ${backend.url}
${nonBrowserYaml('    ')}  tcp:
    path: /tcp
    type: tcp
    backend: tcp://127.0.0.1:${tcpBackend.port}
${nonBrowserYaml('    ')}`);
  });

  after(async () => {
    await gw?.stop();
    await backend?.close();
    await tcpBackend?.close();
  });

  it('sends 1001 to clients, closes backends cleanly, refuses new clients and exits within the drain timeout', async () => {
    const pendingBackend = backend.nextConnection();
    const wsClient = await openClient(gw.url('/ws'));
    const { ws: backendSide } = await pendingBackend;
    assert.equal((await roundTrip(wsClient, 'before')).data.toString(), 'before');
    const pendingTcp = tcpBackend.nextSocket();
    const tcpClient = await openClient(gw.url('/tcp'));
    const tcpSide = await pendingTcp;
    assert.equal((await roundTrip(tcpClient, Buffer.from('bytes'))).data.toString(), 'bytes');
    const deaf = await deafClient(gw.port, '/ws');

    const wsClosed = closedOf(wsClient);
    const tcpClosed = closedOf(tcpClient);
    const backendClosed = once(backendSide, 'close');
    const tcpEnded = once(tcpSide, 'end');
    const deafClosed = once(deaf, 'close');
    gw.child.kill('SIGTERM');

    assert.equal((await wsClosed).code, 1001);
    assert.equal((await tcpClosed).code, 1001);
    const [backendCode] = await backendClosed as [number];
    assert.equal(backendCode, 1001, 'the websocket backend got a clean 1001');
    await tcpEnded; // the tcp backend got a FIN, not a reset
    await assert.rejects(openClient(gw.url('/ws')), 'no new client is admitted while draining');

    // The deaf client never answers the Close: it is dropped at the drain timeout, and the process exits.
    const exitBound = new Promise<never>((_r, reject) => setTimeout(() => reject(new Error('did not exit after the drain timeout')), 2_000 + 8_000).unref());
    const code = await Promise.race([gw.exited, exitBound]);
    assert.equal(code, 0);
    await deafClosed;
  });
});

describe('reload on SIGHUP (real process)', () => {
  let first: WsBackend;
  let second: WsBackend;
  let gw: GatewayProcess;
  const config = (aBackend: string, extra = ''): string => `
listen: [{ host: 127.0.0.1, port: 0 }]
${limitsYaml()}log: { level: info }
services:
  a:
    path: /a
    type: websocket
    backend: ${aBackend}
${nonBrowserYaml('    ')}${extra}`;

  before(async () => {
    first = await startWsBackend({ tag: 'first:' });
    second = await startWsBackend({ tag: 'second:' });
    gw = await startGatewayProcess(config(first.url));
  });

  after(async () => {
    await gw?.stop();
    await first?.close();
    await second?.close();
  });

  it('applies a new config to new connections and leaves open ones untouched', async () => {
    const old = await openClient(gw.url('/a'));
    assert.equal((await roundTrip(old, 'x')).data.toString(), 'first:x');

    writeFileSync(gw.configFile, config(second.url, `  b:
    path: /b
    type: websocket
    backend: ${first.url}
${nonBrowserYaml('    ')}`));
    const reloaded = gw.waitFor(/configuration reloaded/);
    gw.child.kill('SIGHUP');
    await reloaded;

    const fresh = await openClient(gw.url('/a'));
    assert.equal((await roundTrip(fresh, 'y')).data.toString(), 'second:y', 'new connections use the new backend');
    assert.equal((await roundTrip(old, 'z')).data.toString(), 'first:z', 'the open connection keeps its backend');
    const added = await openClient(gw.url('/b'));
    assert.equal((await roundTrip(added, 'w')).data.toString(), 'first:w');
    for (const ws of [fresh, added]) ws.close();

    // Invalid: a schema error, then a certificate file that does not exist. Both refused; nothing changes.
    for (const [bad, key] of [
      [config('http://127.0.0.1:1/'), 'services.a.backend'],
      [config('wss://127.0.0.1:1/', `    tls: { ca: /nonexistent/ca.pem }\n`), 'services.a.tls.ca'],
    ] as const) {
      writeFileSync(gw.configFile, bad);
      const refused = gw.waitFor(/[^\n]*reload refused[^\n]*/);
      gw.child.kill('SIGHUP');
      const [line] = await refused;
      assert.ok(line.includes(key), `the log line names ${key}: ${line}`);
      const still = await openClient(gw.url('/a'));
      assert.equal((await roundTrip(still, 'v')).data.toString(), 'second:v', 'the running config stays');
      still.close();
      assert.equal(await refusedStatus(gw.url('/nowhere')), 404);
    }
    assert.equal((await roundTrip(old, 'u')).data.toString(), 'first:u', 'the open connection is still untouched');
    old.close();
  });
});
