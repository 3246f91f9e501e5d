import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isToken, parseTokenList } from '../../../src/http/tokens.js';

const LIMITS = { maxBytes: 1024, maxTokens: 16 };

test('token lists parse per RFC 9110 1#token', () => {
  const table: Array<[string, string[] | string]> = [
    ['chat', ['chat']],
    ['v12.stomp, v11.stomp', ['v12.stomp', 'v11.stomp']],
    ['mqtt,\tmqttv3.1', ['mqtt', 'mqttv3.1']],
    ['  a  ,  b  ', ['a', 'b']],
    ['a, a, b', 'duplicate'],
    ["!#$%&'*+-.^_`|~09AZaz", ["!#$%&'*+-.^_`|~09AZaz"]],
    ['', 'syntax'],
    [' ', 'syntax'],
    ['a,,b', 'syntax'],
    [',a', 'syntax'],
    ['a,', 'syntax'],
    ['chat;v=1', 'syntax'],
    ['"chat"', 'syntax'],
    ['a b', 'syntax'],
    ['a/b', 'syntax'],
    ['ché', 'syntax'],
    ['b' + ' '.repeat(1000) + 'x', 'syntax'],
    ['b' + ' '.repeat(16 * 1024) + 'x', 'too_long'],
    [Array.from({ length: 17 }, (_, i) => `p${i}`).join(','), 'too_many'],
    [Array.from({ length: 1000 }, (_, i) => `p${i}`).join(','), 'too_long'],
  ];
  for (const [input, expected] of table) {
    const r = parseTokenList(input, LIMITS);
    if (Array.isArray(expected)) assert.deepEqual(r, { ok: true, tokens: expected }, input.slice(0, 40));
    else assert.deepEqual(r, { ok: false, error: expected }, input.slice(0, 40));
  }
  assert.deepEqual(parseTokenList(Array.from({ length: 16 }, (_, i) => `p${i}`).join(','), LIMITS).ok, true);
});

test('isToken', () => {
  assert.equal(isToken('v12.stomp'), true);
  assert.equal(isToken(''), false);
  assert.equal(isToken('a b'), false);
  assert.equal(isToken('a,b'), false);
});
