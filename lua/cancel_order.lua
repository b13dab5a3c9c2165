--[[
  Cancel a hold: the unit goes back to stock and the person may buy again.
  Input:
    KEYS[1] counts   KEYS[2] free   KEYS[3] persons   KEYS[4] orders   KEYS[5] holds
    KEYS[6] events   KEYS[7] porders   KEYS[8] meta   KEYS[9] draw   KEYS[10] draw_order
    KEYS[11] entries   (the order-script layout: dropserver.orders.order_script_keys)
    ARGV[1] order_id
    ARGV[2..] fresh order ids, for the waitlist promotion the cancellation triggers
  Output:
    {0, order_json}  cancelled now, or already cancelled (idempotent)
    {1, order_json}  not held: confirmed or expired orders cannot be cancelled
    {3}              no such order
]]
--- @include "clock"
--- @include "allocate"
--- @include "promote"
--- @include "release"
local k = order_keys()
local ids = {unpack(ARGV, 2)}
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
local encoded = release_hold(order, 'cancelled', now_ms(), k, ids, 1)
return {0, encoded}
