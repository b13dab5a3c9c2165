--[[
  Function to end a hold: the order takes its final status (expired or cancelled), the unit goes
  back to stock and the person may buy again. Appends the event. In a drop with a draw (lottery,
  fair start) the unit then passes down the queue to the next person in draw order. Requires
  includes "allocate" and "promote".
    order       decoded order table (status must be 'held'; the caller checked it)
    new_status  'expired' or 'cancelled'
    k           key names (the order-script layout, see promote)
    ids, ids_from  fresh order ids for the promotion
  Returns the re-encoded order and the number of ids used.
]]
-- The KEYS of the scripts that end holds, by name (layout: dropserver.orders.order_script_keys).
local function order_keys()
  return {counts = KEYS[1], free = KEYS[2], persons = KEYS[3], orders = KEYS[4],
    holds = KEYS[5], events = KEYS[6], porders = KEYS[7], meta = KEYS[8], draw = KEYS[9],
    draw_order = KEYS[10], entries = KEYS[11]}
end

local function release_hold(order, new_status, now, k, ids, ids_from)
  order.status = new_status
  order.ended_at = now
  local encoded = cjson.encode(order)
  redis.call('HSET', k.orders, order.order_id, encoded)
  redis.call('ZREM', k.holds, order.order_id)
  redis.call('RPUSH', k.free, order.serial)
  redis.call('HINCRBY', k.counts, 'held', -1)
  redis.call('HINCRBY', k.counts, new_status, 1)
  if redis.call('HINCRBY', k.persons, order.pid, -1) <= 0 then
    redis.call('HDEL', k.persons, order.pid)
  end
  redis.call('XADD', k.events, '*', 'type', new_status, 'drop', order.drop_id,
    'order', order.order_id, 'serial', order.serial, 'pid', order.pid, 'sub', order.sub)
  return encoded, promote(k, now, ids, ids_from)
end
