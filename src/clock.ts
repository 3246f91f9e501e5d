/**
 * A millisecond clock for per-connection timestamps (timer bookkeeping of
 * idle connections): milliseconds since this module loaded, never 0.
 *
 * Why not Date.now(): it is ≈ 1.8e12, too large for a small integer, so V8
 * stores every such timestamp field as a separate 16-byte heap number — per
 * field, per connection. These values fit a small integer and are stored in
 * the field itself. A difference of two Date.now() values is itself a heap
 * number until it goes through `| 0`, hence the explicit conversion. After
 * 2^31 ms (~24 days) of uptime the values are plain (boxed) numbers again:
 * still correct, only bigger.
 *
 * Only differences of two `monoClock()` values mean anything.
 */
const EPOCH = Date.now() - 1;
const SMALL = 0x7fffffff;

export function monoClock(wallNow: number = Date.now()): number {
  const t = wallNow - EPOCH;
  return t <= SMALL ? t | 0 : t;
}
