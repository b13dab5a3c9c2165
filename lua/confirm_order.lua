--[[
  Confirm an order: the platform took payment, the hold becomes final. A hold already past its
  expiry is expired here (as the sweeper would) and the confirmation refused, so a late payment
  can never take a unit that went back to stock.
  Input:
    KEYS[1] counts   KEYS[2] free   KEYS[3] persons   KEYS[4] orders   KEYS[5] holds
    KEYS[6] events   KEYS[7] porders   KEYS[8] meta   KEYS[9] draw   KEYS[10] draw_order
    KEYS[11] entries   (the order-script layout: dropserver.orders.order_script_keys)
    ARGV[1] order_id
    ARGV[2..] fresh order ids, for the waitlist promotion an expired hold triggers
  Output:
    {0, order_json}  confirmed now, or already confirmed (idempotent)
    {1, order_json}  the order is not held (expired or cancelled)
    {2, order_json}  the hold had expired; it is expired now
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
if order.status == 'confirmed' then
  return {0, raw}
end
if order.status ~= 'held' then
  return {1, raw}
end
local now = now_ms()
if now >= order.expires_at then
  local encoded = release_hold(order, 'expired', now, k, ids, 1)
  return {2, encoded}
end
order.status = 'confirmed'
order.confirmed_at = now
local encoded = cjson.encode(order)
redis.call('HSET', k.orders, order.order_id, encoded)
redis.call('ZREM', k.holds, order.order_id)
redis.call('HINCRBY', k.counts, 'held', -1)
redis.call('HINCRBY', k.counts, 'confirmed', 1)
redis.call('XADD', k.events, '*', 'type', 'confirmed', 'drop', order.drop_id,
  'order', order.order_id, 'serial', order.serial, 'pid', order.pid, 'sub', order.sub)
return {0, encoded}
