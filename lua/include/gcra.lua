--[[
  GCRA (generic cell rate algorithm), computed the way redis-cell's CL.THROTTLE does it, split
  into a pure CHECK and a COMMIT so that a script can check several limiters (person, IP prefix,
  device) and write them only when every one of them passes (all-or-nothing: every check runs
  before the first write).

  Units: integer MICROSECONDS everywhere inside the script. TIME gives sec + usec, and
  sec * 1e6 + usec (about 1.8e15) is an exact integer in a Lua double (< 2^53); every span is
  capped at 2^50 us (about 35.7 years), so now + span + span stays exact as well.

  One limiter is three ARGV values, all decimal integers (dropserver.ratelimit.limiter_args):
    emission_us  T = 1e6 / rate, rounded to a whole microsecond (>= 1). 0 = limiter switched
                 off: it is skipped (no GET, no write, not reported).
    burst        bucket capacity as the API user means it ("burst 5" = 5 requests at once).
                 redis-cell's max_burst is burst - 1, so tau = T * (max_burst + 1) = T * burst
                 and the reported limit is burst.
    quantity     units this request costs (usually 1). 0 = peek: checked, never written.
                 T * quantity > tau can never pass: limited, retry_after = -1 (permanent).

  The stored value of a limiter key is its TAT (theoretical arrival time) in us since the epoch,
  a plain string written with SET ... PX ttl, so an idle limiter disappears by itself.

  Functions (all local; the includer calls them):
    gcra_now_us()                                  -> now (us, from TIME)
    gcra_params(argv, first)                       -> params | nil, err
    gcra_check(stored, now, params)                -> result | nil, err   (pure)
    gcra_check_key(key, now, params)               -> result | nil, err   (GET + gcra_check)
    gcra_check_all(keys, key_first, argv, argv_first, n, now) -> results | nil, err
    gcra_commit(key, result)                       (SET if the result says so)
    gcra_commit_all(keys, key_first, results)
    gcra_verdict(results) -> {limited, index, limit, remaining, retry_after_ms, reset_after_ms}
  err strings start with an error code (BADARGS, BADSTATE) so a caller can pass them straight to
  redis.error_reply.
]]

-- 2^50 us: bounds tau and T * quantity so that every sum below stays an exact integer.
local GCRA_MAX_SPAN_US = 1125899906842624

-- A non-negative decimal integer string, or nil. tonumber alone would also accept "1e3",
-- "0x10" and " 5 ", which no encoder of ours sends; refusing them catches mixed-up ARGV early.
local function gcra_uint(s)
  if type(s) ~= 'string' or #s == 0 or #s > 16 or not string.match(s, '^%d+$') then
    return nil
  end
  return tonumber(s)
end

-- floor(a / b) for integers a >= 0, b > 0. Lua 5.1 has only double division, and
-- math.floor(a / b) can round up to the next integer when a is 1 short of a multiple of a large b.
local function gcra_floor_div(a, b)
  local q = math.floor(a / b)
  if q * b > a then
    q = q - 1
  elseif (q + 1) * b <= a then
    q = q + 1
  end
  return q
end

-- ceil(a / b) for integers a >= 0, b > 0.
local function gcra_ceil_div(a, b)
  return gcra_floor_div(a + b - 1, b)
end

-- us to whole ms, rounded UP: a client that waits the reported time must then be admitted
-- (redis-cell issue #56 / PR #58: truncation told clients to come back too early).
local function gcra_us_to_ms(us)
  if us < 0 then
    return -1
  end
  return gcra_ceil_div(us, 1000)
end

local function gcra_now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- A switched-off limiter's params and result. Shared, never modified: a purchase passes three
-- limiters and a drop without limits switches all of them off, so this path runs most often.
local GCRA_SKIP = { skip = true }
local GCRA_SKIPPED = { skip = true, limited = false, permanent = false, write = false }

local function gcra_where(first)
  return 'BADARGS limiter at ARGV[' .. first .. ']: '
end

-- Parses the limiter whose three values start at argv[first]. Validation only, no Redis calls.
local function gcra_params(argv, first)
  if argv[first] == '0' and argv[first + 1] == '0' and argv[first + 2] == '0' then
    return GCRA_SKIP  -- the usual spelling of "off" (what dropserver sends), without parsing
  end
  local emission = gcra_uint(argv[first])
  local burst = gcra_uint(argv[first + 1])
  local quantity = gcra_uint(argv[first + 2])
  if emission == nil or burst == nil or quantity == nil then
    return nil, gcra_where(first) .. 'emission_us, burst and quantity must be integers >= 0'
  end
  if emission == 0 then
    return GCRA_SKIP
  end
  if burst < 1 then
    return nil, gcra_where(first) .. 'burst must be >= 1'
  end
  local tau = emission * burst
  local increment = emission * quantity
  if tau > GCRA_MAX_SPAN_US or increment > GCRA_MAX_SPAN_US then
    return nil, gcra_where(first) .. 'emission_us * burst and emission_us * quantity must be <= 2^50'
  end
  return {
    skip = false,
    emission = emission,
    limit = burst,
    tau = tau,
    increment = increment,
    quantity = quantity,
  }
end

--[[
  CHECK. stored = the key's GET reply (false when missing), now in us, params from gcra_params.
  Result fields (times in us):
    skip         limiter switched off (nothing else is set except limited = false)
    limited      true = this limiter refuses the request
    permanent    limited and T * quantity > tau: no amount of waiting helps
    limit        burst
    remaining    whole units left after this request (redis-cell: floor((tau - ttl) / T), 0 if
                 that is negative)
    retry_after  us until the same request would pass; -1 when allowed or permanent
    reset_after  us until the bucket is full again (= ttl)
    write        COMMIT must store new_tat (allowed and quantity > 0)
    new_tat, ttl what COMMIT stores
]]
local function gcra_check(stored, now, p)
  if p.skip then
    return GCRA_SKIPPED
  end
  local tat = now
  if stored then
    tat = gcra_uint(stored)
    if tat == nil or tat > GCRA_MAX_SPAN_US * 8 then
      return nil, 'BADSTATE limiter value is not a timestamp in microseconds'
    end
  end
  local new_tat = math.max(tat, now) + p.increment
  local allow_at = new_tat - p.tau
  local diff = now - allow_at
  local r = {
    skip = false,
    limit = p.limit,
    new_tat = new_tat,
    retry_after = -1,
    permanent = false,
    write = false,
  }
  local ttl
  if diff < 0 then
    r.limited = true
    if p.increment <= p.tau then
      r.retry_after = -diff
    else
      r.permanent = true
    end
    -- redis-cell uses tat - now; a key read in the last sub-millisecond before its PX expiry
    -- can hold a tat just behind now, so clamp instead of reporting a negative reset.
    ttl = math.max(tat - now, 0)
  else
    r.limited = false
    r.write = p.quantity > 0
    ttl = new_tat - now
  end
  local next = p.tau - ttl
  -- redis-cell truncates next / T toward zero when next > -T, i.e. 0 for any next <= 0.
  if next > 0 then
    r.remaining = gcra_floor_div(next, p.emission)
  else
    r.remaining = 0
  end
  r.ttl = ttl
  r.reset_after = ttl
  return r
end

local function gcra_check_key(key, now, p)
  if p.skip then
    return gcra_check(false, now, p)
  end
  return gcra_check(redis.call('GET', key), now, p)
end

-- Parses and checks n limiters: keys[key_first + i] with argv[argv_first + 3 * i ..], i = 0..n-1.
-- No writes; returns the results array or nil, err at the first invalid limiter.
local function gcra_check_all(keys, key_first, argv, argv_first, n, now)
  local results = {}
  for i = 0, n - 1 do
    local p, err = gcra_params(argv, argv_first + 3 * i)
    if p == nil then
      return nil, err
    end
    local r
    r, err = gcra_check_key(keys[key_first + i], now, p)
    if r == nil then
      return nil, err
    end
    results[i + 1] = r
  end
  return results
end

--[[
  COMMIT. Stores new_tat with a PX of ttl rounded up to whole ms and at least 1, because
  SET ... PX 0 is an error (T can be 1 us) and a rounded-down expiry would forget state early.
  The value is formatted with %d so it is always a plain integer string, whatever the number
  formatting of Lua (tostring gives "1.8e+15") or Redis; gcra_uint reads nothing else back.
]]
local function gcra_commit(key, r)
  if not r.write then
    return
  end
  local px = math.max(gcra_ceil_div(r.ttl, 1000), 1)
  redis.call('SET', key, string.format('%d', r.new_tat), 'PX', px)
end

local function gcra_commit_all(keys, key_first, results)
  for i = 1, #results do
    gcra_commit(keys[key_first + i - 1], results[i])
  end
end

--[[
  One redis-cell-like summary of several checked limiters:
    {limited (0/1), index, limit, remaining, retry_after_ms, reset_after_ms}
  index is the 1-based position in results of the limiter reported as refusing (0 if allowed);
  it equals the KEYS index only when the limiters start at KEYS[1].
  Refused: the reported limiter is one that refuses permanently if any (retry_after_ms = -1),
  otherwise the one with the LONGEST retry_after, so a client that waits that long passes every
  limiter. Allowed: the tightest one (fewest remaining; ties: longest reset_after).
  No active limiter: {0, 0, 0, 0, -1, 0}.
]]
local function gcra_verdict(results)
  local pick, pick_index, limited = nil, 0, false
  for i = 1, #results do
    local r = results[i]
    if r.limited then
      if not limited then
        pick, pick_index, limited = r, i, true
      elseif not pick.permanent and (r.permanent or r.retry_after > pick.retry_after) then
        pick, pick_index = r, i
      end
    elseif not limited and not r.skip then
      if pick == nil or r.remaining < pick.remaining
        or (r.remaining == pick.remaining and r.reset_after > pick.reset_after) then
        pick = r
      end
    end
  end
  if pick == nil then
    return { 0, 0, 0, 0, -1, 0 }
  end
  return {
    limited and 1 or 0,
    pick_index,
    pick.limit,
    pick.remaining,
    gcra_us_to_ms(pick.retry_after),
    gcra_us_to_ms(pick.reset_after),
  }
end
