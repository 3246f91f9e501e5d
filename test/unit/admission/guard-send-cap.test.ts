/**
 * The channel guard's send cap acts on the send itself: the send that would
 * take the queue past `send_buffer` closes the slow consumer at once, whatever
 * the periodic sweep does (here it never runs). A real WebSocket connection
 * over loopback whose client stops reading.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import { ChannelGuard } from '../../../src/admission/channel-guard.js';
import type { Admission } from '../../../src/admitted.js';
import { DEFAULT_LIMITS } from '../../../src/config/limits.js';
import { parseConfig, servicesOf } from '../../../src/config/load.js';
import { WebSocketConnection } from '../../../src/websocket/connection.js';
import { buildUpgradeResponse, validateUpgradeRequest } from '../../../src/websocket/handshake.js';
import { RawClient } from '../../helpers/raw-client.js';

/** A guard with `sendBuffer` over a real connection whose client has stopped reading; the sweep never runs. */
async function slowConsumer(sendBuffer: number): Promise<{ conn: WebSocketConnection; violations: string[]; stop(): void }> {
  const service = servicesOf(parseConfig({ services: { s: { path: '/s', type: 'echo' } } }, {}))[0];
  const violations: string[] = [];
  const guard = new ChannelGuard({
    limits: { ...DEFAULT_LIMITS, send_buffer: sendBuffer, send_stall_timeout: 3_600_000 },
    audit: { violation: (reason: string) => violations.push(reason), throttle: () => undefined } as never,
    sweepInterval: 3_600_000,
  });
  const server = http.createServer();
  const accepted = new Promise<WebSocketConnection>((resolve) => {
    server.on('upgrade', (req, socket: Socket, head) => {
      socket.write(buildUpgradeResponse(validateUpgradeRequest(req).key, ''));
      const admission = { id: '1', service, client: { address: '127.0.0.1', port: 0 }, origin: null, protocol: '', offeredProtocols: [], release: () => undefined } as unknown as Admission;
      const conn = new WebSocketConnection(socket, head, {
        role: 'server', maxMessage: 1 << 20, maxFragments: 16, messageTimeout: 0, pingInterval: 0, pongTimeout: 0,
        idleTimeout: 0, closeTimeout: 200, highWaterMark: 16 * 1024,
      }, { admission });
      guard.install(conn);
      conn.attach({});
      resolve(conn);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = await RawClient.connect({ port: (server.address() as AddressInfo).port });
  const stop = (): void => {
    client.destroy();
    guard.stop();
    server.close();
  };
  try {
    assert.equal((await client.upgrade('/s')).status, 101);
    client.socket.pause(); // a client that stops reading
    return { conn: await accepted, violations, stop };
  } catch (err) {
    stop();
    throw err;
  }
}

test('the send that passes send_buffer closes the slow consumer at once, without waiting for a sweep', { timeout: 15_000 }, async () => {
  const { conn, violations, stop } = await slowConsumer(128 * 1024);
  try {
    const chunk = Buffer.alloc(32 * 1024, 1);
    let sends = 0;
    let queued = 0;
    // Synchronously, with no sweep in between: the kernel's buffers fill, then the queue grows until the cap.
    while (!conn.closed && sends < 4096) {
      queued = conn.bufferedAmount;
      conn.send(chunk, true);
      sends++;
    }
    assert.equal(conn.closed, true, `still open after ${sends} sends of 32 KiB (${queued} bytes queued) past a 128 KiB send_buffer`);
    assert.ok(queued <= 128 * 1024, `closed by the send that would pass the cap (${queued} bytes were queued)`);
    assert.deepEqual(violations, ['slow_consumer'], 'audited as a slow consumer');
    assert.equal(conn.send(chunk, true), false, 'nothing more is queued');
  } finally {
    stop();
  }
});

test('send_buffer 0: no cap on what is queued toward a client (issue 17, item 6)', { timeout: 15_000 }, async () => {
  const { conn, violations, stop } = await slowConsumer(0);
  try {
    const chunk = Buffer.alloc(32 * 1024, 1);
    // 8 MiB, eight times the default send_buffer, to a client that reads nothing.
    for (let i = 0; i < 256; i++) conn.send(chunk, true);
    assert.equal(conn.closed, false, 'still open');
    assert.ok(conn.bufferedAmount > DEFAULT_LIMITS.send_buffer, `${conn.bufferedAmount} bytes queued, past the default cap`);
    assert.deepEqual(violations, [], 'no slow-consumer violation');
  } finally {
    stop();
  }
});
