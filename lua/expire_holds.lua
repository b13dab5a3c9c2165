--[[
  Expire the holds whose time is up, at most ARGV[1] of them, oldest first, and in a drop with a
  drawn queue pass the units on (then serve any stock the queue can take: this is also what
  hands out the first winners' holds right after a draw). Safe to run from every server process
  at once: each run sees the holds the previous one left.
  Input:
    KEYS[1] counts   KEYS[2] free   KEYS[3] persons   KEYS[4] orders   KEYS[5] holds
    KEYS[6] events   KEYS[7] porders   KEYS[8] meta   KEYS[9] draw   KEYS[10] draw_order
    KEYS[11] entries   (the order-script layout: dropserver.orders.order_script_keys)
    ARGV[1] batch    most holds to expire in this call (bounds the time Redis is busy)
    ARGV[2..] fresh order ids, for the waitlist promotions the expiries trigger
  Output:
    {expired_count, more}  more = 1 when expired holds remain, or fresh ids ran out while the
                           queue could take more: call again
]]
--- @include "clock"
--- @include "allocate"
--- @include "promote"
--- @include "release"
local k = order_keys()
local batch = tonumber(ARGV[1])
local ids, ids_from = {unpack(ARGV, 2)}, 1
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', k.holds, '-inf', now, 'LIMIT', 0, batch + 1)
local n = math.min(#due, batch)
for i = 1, n do
  local raw = redis.call('HGET', k.orders, due[i])
  if raw then
    local order = cjson.decode(raw)
    if order.status == 'held' then
      local _, used = release_hold(order, 'expired', now, k, ids, ids_from)
      ids_from = ids_from + used
    else
      redis.call('ZREM', k.holds, due[i])
    end
  else
    redis.call('ZREM', k.holds, due[i])
  end
end
ids_from = ids_from + promote(k, now, ids, ids_from)
local starved = #ids > 0 and ids_from > #ids
return {n, (#due > batch or starved) and 1 or 0}
