/** The relay's close-code policy: what one side gets when the other ends (1005 / 1006 / 1015 never on the wire). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CloseInfo } from '../../../src/channel.js';
import { backendCodeForClientEnd, clientCodeForBackendEnd, isSendableCloseCode } from '../../../src/relay/close-codes.js';

const info = (code: number, initiator: CloseInfo['initiator'], reason = 'r'): CloseInfo => ({ code, reason, initiator, wasClean: initiator !== 'transport' });

describe('relay close codes', () => {
  it('knows which codes may be sent', () => {
    for (const c of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]) assert.equal(isSendableCloseCode(c), true, String(c));
    for (const c of [999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]) assert.equal(isSendableCloseCode(c), false, String(c));
  });

  const toClient: Array<[CloseInfo, number]> = [
    [info(4002, 'remote'), 4002], // the backend's own close is carried
    [info(1011, 'remote'), 1011],
    [info(1005, 'remote'), 1000], // empty Close → 1000
    [info(1006, 'transport'), 1014], // vanished / reset
    [info(1002, 'local'), 1014], // our codec closed the backend for bad frames
    [info(1015, 'remote'), 1014],
  ];
  for (const [i, expected] of toClient) {
    it(`backend ${i.initiator} ${i.code} → client ${expected}`, () => {
      assert.equal(clientCodeForBackendEnd(i).code, expected);
    });
  }

  const toBackend: Array<[CloseInfo, number]> = [
    [info(4001, 'remote'), 4001],
    [info(1000, 'remote'), 1000],
    [info(1005, 'remote'), 1000],
    [info(1006, 'transport'), 1001], // the client vanished
    [info(1009, 'local'), 1001], // the gateway closed the client (too big)
  ];
  for (const [i, expected] of toBackend) {
    it(`client ${i.initiator} ${i.code} → backend ${expected}`, () => {
      assert.equal(backendCodeForClientEnd(i).code, expected);
    });
  }

  it('carries the reason only with a carried code', () => {
    assert.equal(clientCodeForBackendEnd(info(4002, 'remote', 'bye')).reason, 'bye');
    assert.equal(clientCodeForBackendEnd(info(1006, 'transport', 'ECONNRESET')).reason, 'bad gateway');
  });
});
