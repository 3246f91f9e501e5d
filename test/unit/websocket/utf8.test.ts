import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Utf8Validator, isValidUtf8 } from '../../../src/websocket/utf8.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const VALID = [
  '', '7f', 'c280', 'dfbf', 'e0a080', 'efbfbf', 'f0908080', 'f48fbfbf', 'efbfbe', 'efbbbf', '00', 'ed9fbf', 'ee8080',
  'cebae1bdb9cf83cebcceb5', Buffer.from('héllo wörld € 𝄞').toString('hex'),
];
// [bytes, index of the first byte at which the input can never become valid]
const INVALID: [string, number][] = [
  ['c0af', 0], ['c1bf', 0], ['eda080', 1], ['edbfbf', 1], ['f4908080', 1], ['f888808080', 0], ['80', 0], ['bf', 0],
  ['fe', 0], ['ff', 0], ['f5', 0], ['e080af', 1], ['f08080af', 1], ['41c3', -1], ['e282', -1], ['c328', 1],
  ['e28228', 2], ['f0908028', 3],
];

/** Reference: does a prefix stay valid? Uses the whole-buffer native check on completions. */
describe('Utf8Validator', () => {
  for (const h of VALID) {
    it(`accepts ${h || '(empty)'} whole and byte by byte`, () => {
      const b = hex(h);
      const v = new Utf8Validator();
      assert.equal(v.update(b), true);
      assert.equal(v.finish(), true);
      v.reset();
      for (let i = 0; i < b.length; i++) assert.equal(v.update(b, i, i + 1), true);
      assert.equal(v.finish(), true);
      assert.equal(isValidUtf8(b), true);
    });
  }
  for (const [h, failAt] of INVALID) {
    it(`rejects ${h}${failAt >= 0 ? ` at byte ${failAt}` : ' at finish (truncated)'}`, () => {
      const b = hex(h);
      const v = new Utf8Validator();
      for (let i = 0; i < b.length; i++) {
        const ok = v.update(b, i, i + 1);
        // Fail-fast: false exactly at the first impossible byte, not later, not earlier.
        assert.equal(ok, failAt < 0 || i < failAt, `byte ${i}`);
      }
      assert.equal(v.finish(), false);
      assert.equal(isValidUtf8(b), false);
      const w = new Utf8Validator();
      assert.equal(w.update(b) && w.finish(), false);
    });
  }

  it('stays rejected until reset', () => {
    const v = new Utf8Validator();
    assert.equal(v.update(hex('ff')), false);
    assert.equal(v.update(hex('41')), false);
    v.reset();
    assert.equal(v.update(hex('41')), true);
  });

  it('respects start/end', () => {
    const v = new Utf8Validator();
    assert.equal(v.update(hex('ff41ff'), 1, 2), true);
    assert.equal(v.finish(), true);
  });

  it('agrees with the native validator on random data in random chops (fast and slow paths)', () => {
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const pieces = ['a', 'é', '€', '𝄞', '\u007f', '\u0080', '\uffff', '\u{10ffff}'].map((s) => Buffer.from(s));
    for (let round = 0; round < 300; round++) {
      const parts: Buffer[] = [];
      const n = rnd(300);
      for (let i = 0; i < n; i++) parts.push(pieces[rnd(pieces.length)]);
      const buf = Buffer.concat(parts);
      // Corrupt one byte in a third of the rounds.
      if (round % 3 === 0 && buf.length > 0) buf[rnd(buf.length)] = rnd(256);
      const v = new Utf8Validator();
      let ok = true;
      for (let i = 0; i < buf.length && ok;) {
        const step = 1 + rnd(200);
        ok = v.update(buf, i, Math.min(buf.length, i + step));
        i += step;
      }
      ok = ok && v.finish();
      assert.equal(ok, isValidUtf8(buf), `round ${round}: ${buf.toString('hex')}`);
    }
  });
});
