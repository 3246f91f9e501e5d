/**
 * The fallback re-checks the Origin of every session request against the
 * service's allow-list as it is now, not as it was when the session opened:
 * an origin a reload removed is refused on the session's next request, even
 * though it is the very origin the session was opened with.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../src/config/load.js';
import { startGateway } from '../../helpers/gateway.js';
import { ALLOWED, RawSession, openSession } from './raw.js';

const service = (origins: string[]): Record<string, unknown> => ({ services: { echo: { path: '/echo', type: 'echo', origins } } });

test('an origin removed by a reload is refused on the session it opened', { timeout: 20_000 }, async () => {
  const gw = await startGateway(service([ALLOWED, 'https://other.example']));
  try {
    const headers = { Origin: ALLOWED };
    const { res, sid } = await openSession(gw.httpUrl('/echo'), headers);
    assert.equal(res.status, 200, 'the session opens from an allowed origin');
    const session = new RawSession(gw.httpUrl('/echo'), sid!, headers);
    assert.equal((await session.send(['before'])).status, 200, 'and is served');

    await gw.gateway.reload(parseConfig({ listen: [{ host: '127.0.0.1', port: gw.port }], ...service(['https://other.example']) }, {}));
    const after = await session.send(['after']);
    assert.equal(after.status, 403, 'the same origin, no longer on the list, is refused');
    await after.arrayBuffer();
    assert.ok(gw.logs.some((l) => l.reason === 'fallback_origin_mismatch'), 'audited as fallback_origin_mismatch');
  } finally {
    await gw.stop();
  }
});
