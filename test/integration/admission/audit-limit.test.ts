/**
 * log.bad_input_per_second: 0 means no limit on audit lines, as 0 does for
 * every limit (issue 16): every refused handshake gets its line. Were the 0
 * passed to the rate limiter as a number, no line at all would get through.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startGateway } from '../../helpers/gateway.js';

/** More than the default of 20 a second, all sent at once. */
const REFUSED = 30;

/** Opens a WebSocket without an Origin (a service that requires one refuses it with 403); resolves with the refusal's status. */
function refusedStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => { ws.terminate(); reject(new Error('a handshake without an Origin was admitted')); });
    ws.once('unexpected-response', (_req, res) => { res.resume(); resolve(res.statusCode ?? 0); ws.terminate(); });
    ws.once('error', () => undefined);
  });
}

test('log.bad_input_per_second: 0 logs every refusal of one kind, however many in a second', { timeout: 30_000 }, async () => {
  const gw = await startGateway({ log: { bad_input_per_second: 0 }, services: { strict: { path: '/strict', type: 'echo' } } });
  try {
    const statuses = await Promise.all(Array.from({ length: REFUSED }, () => refusedStatus(gw.url('/strict'))));
    assert.deepEqual(new Set(statuses), new Set([403]), 'every handshake without an Origin is refused with 403');
    const lines = gw.auditReasons().filter((r) => r === 'origin_missing');
    assert.equal(lines.length, REFUSED, `one audit line per refusal, none suppressed (got ${lines.length} of ${REFUSED})`);
  } finally {
    await gw.stop();
  }
});
