"""The Lua scripts that charge a quota in Redis, one per rate-limit algorithm.

A script runs atomically in Redis, so Mixers sharing one Redis never grant more than the
limit between them however their requests interleave. Time is Redis's own clock (TIME),
not each Mixer's, so Mixers with skewed clocks still agree on the windows. All times are
integer milliseconds, written with string.format('%d') because Lua 5.1's tostring keeps
only 14 digits.

KEYS: [1] the quota's state hash, [2] the rolling window's bucket index (a sorted set;
unused by FIXED_WINDOW), [3] optional: this request's deduplication record.
ARGV: [1] max amount, [2] window ms, [3] bucket ms, [4] best effort ('1'/'0'),
[5] amount, [6] '1' if KEYS[3] is a deduplication record, [7] the time in ms, or '' for
Redis's own (tests pass fake time here).
Returns {granted, valid_ms}. A retried request (same deduplication record, within one
window) gets its first answer again and is not charged twice.
"""

from __future__ import annotations

_PREAMBLE = """
local credit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local bucket = tonumber(ARGV[3])
local best_effort = ARGV[4] == '1'
local amount = tonumber(ARGV[5])
local dedup = nil
if ARGV[6] == '1' then dedup = KEYS[3] end

local function int(n) return string.format('%d', n) end

if dedup then
  local previous = redis.call('HMGET', dedup, 'granted', 'valid')
  if previous[1] then
    return {tonumber(previous[1]), tonumber(previous[2])}
  end
end

local now = tonumber(ARGV[7])
if not now then
  local clock = redis.call('TIME')
  now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end

local function grant(available)
  if amount <= available then return amount end
  if best_effort and available > 0 then return available end
  return 0
end

local function answer(granted, valid)
  if dedup then
    redis.call('HSET', dedup, 'granted', int(granted), 'valid', int(valid))
    redis.call('PEXPIRE', dedup, int(window))
  end
  return {granted, valid}
end
"""

# One counter per window of validDuration, starting at the first request after the last
# window ended. Cheap, but up to twice the limit can pass around a window's edge.
FIXED_WINDOW = (
    _PREAMBLE
    + """
local state = KEYS[1]
local saved = redis.call('HMGET', state, 'used', 'expires')
local used = tonumber(saved[1])
local expires = tonumber(saved[2])
if not used or not expires or now >= expires then
  used = 0
  expires = now + window
end
local granted = grant(credit - used)
if granted == 0 then
  return answer(0, 0)
end
redis.call('HSET', state, 'used', int(used + granted), 'expires', int(expires))
redis.call('PEXPIRE', state, int(expires - now))
return answer(granted, expires - now)
"""
)

# Grants counted per bucket of bucketDuration; a bucket's count comes back once all of it
# has left the window, so no interval of validDuration ever holds more than the limit.
ROLLING_WINDOW = (
    _PREAMBLE
    + """
local state = KEYS[1]
local index = KEYS[2]
local horizon = int(now - window - bucket)
local gone = redis.call('ZRANGEBYSCORE', index, '-inf', horizon)
if #gone > 0 then
  local freed = 0
  for _, start in ipairs(gone) do
    freed = freed + (tonumber(redis.call('HGET', state, start)) or 0)
    redis.call('HDEL', state, start)
  end
  redis.call('ZREMRANGEBYSCORE', index, '-inf', horizon)
  redis.call('HINCRBY', state, 'used', int(-freed))
end
local used = tonumber(redis.call('HGET', state, 'used')) or 0
local granted = grant(credit - used)
if granted == 0 then
  return answer(0, 0)
end
local start = int(now - (now % bucket))
redis.call('HINCRBY', state, start, int(granted))
redis.call('ZADD', index, start, start)
redis.call('HINCRBY', state, 'used', int(granted))
redis.call('PEXPIRE', state, int(window + bucket))
redis.call('PEXPIRE', index, int(window + bucket))
return answer(granted, window)
"""
)

SCRIPTS = {"FIXED_WINDOW": FIXED_WINDOW, "ROLLING_WINDOW": ROLLING_WINDOW}
