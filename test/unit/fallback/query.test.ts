/** The fallback's reserved query parameters, read by hand: exactly as URLSearchParams#get reads them, for any target. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fallbackQuery } from '../../../src/front/fallback-query.js';

function expected(url: string): { op: string | null; session: string | null; ack: string | null } {
  const q = url.indexOf('?');
  const params = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
  return { op: params.get('gh'), session: params.get('s'), ack: params.get('a') };
}

test('fallbackQuery reads gh, s and a as URLSearchParams does: first of each, decoded, empty when no =', () => {
  for (const url of [
    '/echo', '/echo?', '/echo?gh=send&s=abc', '/echo?gh=stream&s=abc&a=12', '/echo?s=x&gh=poll&gh=send&a=1&a=2',
    '/echo?gh&s=&a', '/echo?&&gh=send&&', '/echo?gh=send=x&s==y', '/echo?%67h=open', '/echo?gh=a+b&s=%41',
    '/echo?gh=%zz', '/echo?x=1&gh=open&token=t', '/echo?ghx=1&sa=2&a=3', '/echo?g=1&h=2',
  ]) {
    assert.deepEqual(fallbackQuery(url), expected(url), url);
  }
});

test('fallbackQuery agrees with URLSearchParams on arbitrary targets', () => {
  const piece = fc.constantFrom('gh', 's', 'a', '=', '&', '%', '%67', '+', 'x', 'send', '?', '#', '', 'é');
  fc.assert(fc.property(fc.array(piece, { maxLength: 16 }), (parts) => {
    const url = `/echo?${parts.join('')}`;
    assert.deepEqual(fallbackQuery(url), expected(url), url);
  }), { numRuns: 2000 });
});
