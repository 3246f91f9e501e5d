import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { monoClock } from '../../src/clock.js';

describe('monoClock', () => {
  it('is a small integer that counts milliseconds', async () => {
    const a = monoClock();
    assert.ok(Number.isInteger(a) && a > 0 && a <= 0x7fffffff);
    await new Promise((resolve) => setTimeout(resolve, 30));
    const b = monoClock();
    assert.ok(b - a >= 25 && b - a < 1000, `advanced ${b - a} ms over 30 ms`);
  });

  it('does not follow the wall clock when the system time steps', (t) => {
    const before = monoClock();
    const real = Date.now();
    // The system time jumps an hour back, then a day forward: deadlines must not care.
    t.mock.method(Date, 'now', () => real - 3_600_000);
    const back = monoClock();
    t.mock.method(Date, 'now', () => real + 86_400_000);
    const forward = monoClock();
    assert.ok(back >= before && back - before < 1000, `stepped back: ${back - before}`);
    assert.ok(forward >= back && forward - back < 1000, `stepped forward: ${forward - back}`);
  });
});
