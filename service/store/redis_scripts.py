"""The Redis store's Lua scripts: each use of the shared state in one atomic round trip.

Every script reads Redis's own clock (`TIME`), so every worker and replica
agrees on it, whatever their hosts' clocks say.
"""

# KEYS: one per limit. ARGV: the day's length in ms, then per limit: kind ("r"|"q"), count,
# period_ms (a rate's; a quota's period is the rest of the UTC day).
# Time is Redis's own clock, so every worker and replica agrees on it, and concurrent
# requests are ordered by their arrival at Redis. A quota expires at the end of the UTC day.
# Returns {retry_after_ms, remaining_1, reset_ms_1, remaining_2, reset_ms_2, ...}.
HIT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local retry = 0
local out = {}
local commits = {}
for i, key in ipairs(KEYS) do
  local kind = ARGV[i * 3 - 1]
  local count = tonumber(ARGV[i * 3])
  local period = tonumber(ARGV[i * 3 + 1])
  local stored = tonumber(redis.call('GET', key) or '0')
  if kind == 'r' then
    local interval = period / count
    local tat = math.max(stored, now)
    if tat - now > period - interval then
      retry = math.max(retry, math.ceil(tat - now - (period - interval)))
      out[#out + 1] = 0
      out[#out + 1] = math.ceil(tat - now)
    else
      local new_tat = tat + interval
      commits[#commits + 1] = {key, 'r', new_tat, new_tat - now}
      out[#out + 1] = math.floor((period - (new_tat - now)) / interval)
      out[#out + 1] = new_tat - now
    end
  else
    period = tonumber(ARGV[1]) - (now % tonumber(ARGV[1]))
    if stored >= count then retry = math.max(retry, period) end
    commits[#commits + 1] = {key, 'q', 0, period}
    out[#out + 1] = math.max(0, count - stored - 1)
    out[#out + 1] = period
  end
end
if retry == 0 then
  for _, c in ipairs(commits) do
    if c[2] == 'r' then
      -- Microsecond precision: rounding to whole ms per step would tighten the limit.
      redis.call('SET', c[1], string.format('%.3f', c[3]), 'PX', math.max(1, math.ceil(c[4])))
    elseif redis.call('INCR', c[1]) == 1 then
      redis.call('PEXPIRE', c[1], c[4])
    end
  end
end
table.insert(out, 1, retry)
return out
"""


LEASES = "rtp:calls:leases"
"""ZSET: supervised call -> lease expiry (ms, Redis's clock)."""
OWNERS = "rtp:calls:owners"
"""HASH: supervised call -> the worker holding its lease."""

# Redis's clock for every lease, so that workers on different hosts agree.
NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""
ADD = """
local out = {}
for i, key in ipairs(KEYS) do
  local total = redis.call('INCRBY', key, ARGV[i + 1])
  if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ARGV[1]) end
  out[i] = total
end
return out
"""
# KEYS: records to write again. ARGV: the TTL (ms), then each record's value.
# SET XX: a record deleted meanwhile (its call ended) stays deleted.
UPDATE = """
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[i + 1], 'PX', ARGV[1], 'XX')
end
return 0
"""
# KEYS: the checked budget counters, then the counters to add to. ARGV: the number of checks,
# the TTL (ms), each check's limit, then each addition. A budget refuses when its counter plus
# its reservations (the counter's name and ':held'; never below 0) reaches its limit.
# An added-to counter below 0 (holds the store lost) is reset to 0 first.
# Returns 0 (held), or the 1-based index of the check that refused (nothing changed).
HOLD = """
local checks = tonumber(ARGV[1])
for i = 1, checks do
  local spent = tonumber(redis.call('GET', KEYS[i]) or '0')
  local held = math.max(0, tonumber(redis.call('GET', KEYS[i] .. ':held') or '0'))
  if spent + held >= tonumber(ARGV[i + 2]) then return i end
end
for i = checks + 1, #KEYS do
  -- Below 0 only if the store lost holds (a flush): start again from none.
  local was = tonumber(redis.call('GET', KEYS[i]) or '0')
  redis.call('INCRBY', KEYS[i], tonumber(ARGV[i + 2]) - math.min(0, was))
  if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
end
return 0
"""
RESERVE = (
    NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false
   and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
local expires = now + tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], expires, ARGV[1])
redis.call('PEXPIREAT', KEYS[1], math.max(expires, redis.call('PTTL', KEYS[1]) + now))
return 1
"""
)
MISSING = """
local out = {}
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 0 then out[#out + 1] = key end
end
return out
"""
RESTORE = (
    NOW
    + """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false then
  local expires = now + tonumber(ARGV[2])
  redis.call('ZADD', KEYS[1], expires, ARGV[1])
  redis.call('PEXPIREAT', KEYS[1], math.max(expires, redis.call('PTTL', KEYS[1]) + now))
end
return 1
"""
)
OCCUPANCY = (
    NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""
)
MEMBERS = (
    NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""
)
CLAIM = (
    NOW
    + """
local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
local holder = redis.call('HGET', KEYS[2], ARGV[1])
if expires and tonumber(expires) > now and holder and holder ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""
)
RENEW = (
    NOW
    + """
local lost = {}
for i = 3, #ARGV do
  local holder = redis.call('HGET', KEYS[2], ARGV[i])
  if holder == ARGV[1] or not holder then
    -- Ours, or never written (the store was down at creation): take it now.
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[i])
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[1])
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
"""
)
RELEASE = """
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[1] then
    redis.call('ZADD', KEYS[1], 0, ARGV[i])
  end
end
return 1
"""
ORPHANS = (
    NOW
    + """
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[1])
"""
)
