import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedBuckets, TokenBucket } from '../../../src/shared-state/token-bucket.js';

test('token bucket: burst, refill, wait time', () => {
  const b = new TokenBucket(10, 20, 0);
  for (let i = 0; i < 20; i++) assert.equal(b.take(1, 0), true);
  assert.equal(b.take(1, 0), false);
  assert.equal(b.waitFor(1, 0), 100);
  assert.equal(b.take(1, 100), true);
  assert.equal(b.take(1, 100), false);
  assert.equal(b.isFull(10_000), true);
});

test('token bucket debt: an oversized charge passes, then must be paid back', () => {
  const b = new TokenBucket(100, 200, 0);
  assert.equal(b.inDebt(0), false);
  b.charge(500, 0);
  assert.equal(b.inDebt(0), true);
  assert.equal(b.inDebt(2000), true); // still paying back: -300 + 200 = -100
  assert.equal(b.inDebt(3100), false);
});

test('keyed buckets forget refilled keys', () => {
  const k = new KeyedBuckets(20, 50, 1000);
  for (let i = 0; i < 50; i++) assert.equal(k.take('a', 0), 0);
  assert.equal(k.take('a', 0), 50);
  k.take('b', 0);
  assert.equal(k.size, 2);
  k.take('c', 5000); // sweeps: a and b have refilled
  assert.equal(k.size, 1);
});
