/**
 * A monotonic millisecond clock for per-connection timestamps (timer
 * bookkeeping of idle connections): milliseconds since the process started,
 * never 0.
 *
 * Why not Date.now(): it is ≈ 1.8e12, too large for a small integer, so V8
 * stores every such timestamp field as a separate 16-byte heap number — per
 * field, per connection; these values fit a small integer and are stored in
 * the field itself. And it is the wall clock: a step of the system time (NTP,
 * an operator) would make every idle or close deadline fire at once, or
 * never. After 2^31 ms (~24 days) of uptime the values are plain (boxed)
 * numbers: still correct, only bigger.
 *
 * Only differences of two `monoClock()` values mean anything.
 */
import { performance } from 'node:perf_hooks';

const SMALL = 0x7fffffff;

export function monoClock(): number {
  const t = Math.floor(performance.now()) + 1;
  return t <= SMALL ? t | 0 : t;
}
