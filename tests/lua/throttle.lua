--[[
  throttle: charge 0..3 GCRA rate limiters atomically. A test harness: it exposes
  lua/include/gcra.lua on its own so the tests can hold it to redis-cell's semantics; the
  server's scripts (challenge, purchase, enter) include the same functions.

  All limiters are checked first; only if every one of them allows the request are they all
  written. A refusal writes nothing, so a refused request costs no quota on any limiter.
  Time is the Redis server clock (TIME), in integer microseconds (see include/gcra.lua).

  KEYS[i]  (i = 1..n, n <= 3): the limiters that apply, e.g. {drop:<id>}:rl:person:<pid>,
           {drop:<id>}:rl:ip:<prefix>, {drop:<id>}:rl:device:<id> (one hash tag, one slot).
  ARGV     exactly 3 * n values, one triple per key, in KEYS order, all decimal integers
           (dropserver.ratelimit.limiter_args):
           ARGV[3i-2] emission_us  1e6 / rate, whole us >= 1 (0 = limiter off, skipped)
           ARGV[3i-1] burst        bucket capacity >= 1 (redis-cell max_burst + 1)
           ARGV[3i]   quantity     units to charge, >= 0 (0 = peek, nothing written)

  Reply: a flat array of 6 integers (redis-cell CL.THROTTLE-like, times in ms rounded up):
    1 limited         0 = allowed (all limiters written), 1 = refused (nothing written)
    2 index           1-based KEYS index of the limiter reported as refusing; 0 when allowed
    3 limit           burst of the reported limiter (0 when no limiter is active)
    4 remaining       units left on the reported limiter
    5 retry_after_ms  -1 when allowed or when the request can never pass (quantity > burst);
                      otherwise >= 1, and waiting it admits the same request on every limiter
    6 reset_after_ms  ms until the reported limiter is full again
  Reported limiter: when refused, a permanent refusal if any, else the longest retry_after;
  when allowed, the tightest limiter (fewest remaining). No active limiter: {0, 0, 0, 0, -1, 0}.

  Errors (nothing written): BADARGS (wrong counts or values), BADSTATE (a key holds something
  that is not a TAT); WRONGTYPE from GET if a key holds a non-string.
]]

--- @include "gcra"

local n = #KEYS
if n > 3 then
  return redis.error_reply('BADARGS at most 3 limiters, got ' .. n)
end
if #ARGV ~= 3 * n then
  return redis.error_reply('BADARGS expected ' .. (3 * n) .. ' ARGV (3 per key), got ' .. #ARGV)
end

local now = gcra_now_us()
local results, err = gcra_check_all(KEYS, 1, ARGV, 1, n, now)
if results == nil then
  return redis.error_reply(err)
end

local verdict = gcra_verdict(results)
if verdict[1] == 0 then
  gcra_commit_all(KEYS, 1, results)
end
return verdict
