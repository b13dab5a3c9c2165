--[[
  Cancel a hold: the unit goes back to stock and the person may buy again.
  Input:
    KEYS[1] counts   KEYS[2] free   KEYS[3] persons   KEYS[4] orders
    KEYS[5] holds    KEYS[6] events
    ARGV[1] order_id
  Output:
    {0, order_json}  cancelled now, or already cancelled (idempotent)
    {1, order_json}  not held: confirmed or expired orders cannot be cancelled
    {3}              no such order
]]
--- @include "clock"
--- @include "release"
local k = {counts = KEYS[1], free = KEYS[2], persons = KEYS[3], orders = KEYS[4],
  holds = KEYS[5], events = KEYS[6]}
local raw = redis.call('HGET', k.orders, ARGV[1])
if not raw then
  return {3}
end
local order = cjson.decode(raw)
if order.status == 'cancelled' then
  return {0, raw}
end
if order.status ~= 'held' then
  return {1, raw}
end
return {0, release_hold(order, 'cancelled', now_ms(), k)}
