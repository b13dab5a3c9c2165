--[[
  Expire the holds whose time is up, at most ARGV[1] of them, oldest first. Safe to run from
  every server process at once: each run sees the holds the previous one left.
  Input:
    KEYS[1] counts   KEYS[2] free   KEYS[3] persons   KEYS[4] orders
    KEYS[5] holds    KEYS[6] events
    ARGV[1] batch    most holds to expire in this call (bounds the time Redis is busy)
  Output:
    {expired_count, more}  more = 1 when expired holds remain for another call
]]
--- @include "clock"
--- @include "release"
local k = {counts = KEYS[1], free = KEYS[2], persons = KEYS[3], orders = KEYS[4],
  holds = KEYS[5], events = KEYS[6]}
local batch = tonumber(ARGV[1])
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', k.holds, '-inf', now, 'LIMIT', 0, batch + 1)
local n = math.min(#due, batch)
for i = 1, n do
  local raw = redis.call('HGET', k.orders, due[i])
  if raw then
    local order = cjson.decode(raw)
    if order.status == 'held' then
      release_hold(order, 'expired', now, k)
    else
      redis.call('ZREM', k.holds, due[i])
    end
  else
    redis.call('ZREM', k.holds, due[i])
  end
end
return {n, #due > batch and 1 or 0}
