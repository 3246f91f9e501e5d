/**
 * The Lua scripts of the Redis shared state. Each decides alone, atomically
 * (Redis runs one script at a time), on Redis's own clock (`TIME`), so
 * gateways whose clocks differ still agree. Loaded once per connection and
 * run by their SHA (ioredis `defineCommand`).
 */

/** The server's clock in milliseconds. */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * Handshake token bucket. KEYS[1] bucket; ARGV rate (per s), burst.
 * Returns 0 when a token was taken, else the milliseconds until one is there.
 */
export const TAKE_TOKEN = `${NOW}
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
if now > at then tokens = math.min(burst, tokens + (now - at) * rate / 1000) end
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.max(1, math.ceil((1 - tokens) * 1000 / rate)) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait`;

/**
 * The window of one attempt counter (KEYS[1]: count and start of its
 * failures), its failures forgotten once the window is over; and its attempts
 * under way (KEYS[2]: a sorted set of tokens, each expiring after ARGV[3] ms,
 * so one whose process died, or whose answer was lost, stops counting).
 */
const WINDOW = `${NOW}
local window = tonumber(ARGV[2])
local w = redis.call('HMGET', KEYS[1], 'count', 'start')
local count, start = tonumber(w[1]) or 0, tonumber(w[2]) or 0
if count > 0 and now - start >= window then count = 0; start = 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)`;

/**
 * Reserve a failed-attempt slot. KEYS counter, attempts under way; ARGV limit,
 * window (ms), how long an attempt may stay under way (ms), its token, retry (ms).
 * Returns 0 when reserved, else the milliseconds to wait.
 */
export const RESERVE_ATTEMPT = `${WINDOW}
local limit = tonumber(ARGV[1])
if count + redis.call('ZCARD', KEYS[2]) >= limit then
  if count >= limit then return math.max(1, window - (now - start)) end
  return tonumber(ARGV[5])
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 0`;

/** Settle a reserved attempt. KEYS as above; ARGV failed (1/0), window (ms), -, its token. */
export const SETTLE_ATTEMPT = `${WINDOW}
redis.call('ZREM', KEYS[2], ARGV[4])
if ARGV[1] == '1' then
  if count == 0 then start = now end
  count = count + 1
end
if count == 0 then redis.call('DEL', KEYS[1]); return 0 end
redis.call('HSET', KEYS[1], 'count', count, 'start', start)
redis.call('PEXPIRE', KEYS[1], window)
return 0`;

/**
 * Store an issued ticket, at most `perOwner` outstanding per owner.
 * KEYS[1] ticket, KEYS[2] the owner's set; ARGV sealed ticket, time to keep (ms),
 * expiry (epoch ms), perOwner (-1: no cap), member. Returns 0, or the
 * milliseconds until the owner's oldest ticket expires.
 */
export const PUT_TICKET = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local cap = tonumber(ARGV[4])
if cap >= 0 and redis.call('ZCARD', KEYS[2]) >= cap then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) - now)
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 0`;

/** Live instances' counts in hash `h`; fields of instances whose liveness key is gone are removed. */
const LIVE_SUM = `local function live(h)
  local vals = redis.call('HGETALL', h)
  local sum = 0
  for i = 1, #vals, 2 do
    if redis.call('EXISTS', ARGV[2] .. vals[i]) == 1 then sum = sum + tonumber(vals[i + 1])
    else redis.call('HDEL', h, vals[i]) end
  end
  return sum
end`;

/**
 * Count one connection in the address's, the service's and the total hash
 * (a field per gateway process), when each is under its limit.
 * KEYS address, service, total; ARGV instance, liveness key prefix, per address,
 * per service (-1: none), total, address key ttl (ms).
 * Returns 0 (counted), 1 address, 2 service, 3 total.
 */
export const RESERVE_SLOT = `${LIVE_SUM}
if live(KEYS[1]) >= tonumber(ARGV[3]) then return 1 end
local perService = tonumber(ARGV[4])
if perService >= 0 and live(KEYS[2]) >= perService then return 2 end
if live(KEYS[3]) >= tonumber(ARGV[5]) then return 3 end
for i = 1, 3 do redis.call('HINCRBY', KEYS[i], ARGV[1], 1) end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 0`;

/** Give one slot back. KEYS address, service, total; ARGV instance. */
export const RELEASE_SLOT = `for i = 1, 3 do
  if redis.call('HINCRBY', KEYS[i], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[i], ARGV[1]) end
end
return 0`;

export const SCRIPTS = {
  ghTakeToken: { numberOfKeys: 1, lua: TAKE_TOKEN },
  ghReserveAttempt: { numberOfKeys: 2, lua: RESERVE_ATTEMPT },
  ghSettleAttempt: { numberOfKeys: 2, lua: SETTLE_ATTEMPT },
  ghPutTicket: { numberOfKeys: 2, lua: PUT_TICKET },
  ghReserveSlot: { numberOfKeys: 3, lua: RESERVE_SLOT },
  ghReleaseSlot: { numberOfKeys: 3, lua: RELEASE_SLOT },
} as const;

export type ScriptName = keyof typeof SCRIPTS;
