--[[
  Functions to hand a unit of stock to a person: shared by the FCFS purchase and by the
  promotion of lottery winners and waitlisted persons, so both keep the same books.
    k   table of key names: counts, free, persons, orders, holds, events, porders
  Stock is the serials never handed out (next_serial < supply) plus those returned (free).
]]
-- Where the next unit comes from: 'free' (a returned serial), 'new' (a serial never handed out),
-- or nil when none is left. allocate takes the answer, so the free list is read once.
local function stock_source(k, supply)
  if redis.call('LLEN', k.free) > 0 then
    return 'free'
  end
  if tonumber(redis.call('HGET', k.counts, 'next_serial') or '0') < supply then
    return 'new'
  end
  return nil
end

-- Allocates one unit from source (stock_source's answer, not nil). Returns serial, status,
-- expires_at.
local function allocate(k, source, drop_id, pid, sub, order_id, now, hold_ms, event)
  local serial
  if source == 'free' then
    serial = tonumber(redis.call('LPOP', k.free))
  else
    serial = redis.call('HINCRBY', k.counts, 'next_serial', 1)
  end
  redis.call('HINCRBY', k.persons, pid, 1)
  local mine = redis.call('HGET', k.porders, pid)
  redis.call('HSET', k.porders, pid, mine and (mine .. ' ' .. order_id) or order_id)
  local status, expires_at = 'confirmed', 0
  if hold_ms > 0 then
    status, expires_at = 'held', now + hold_ms
    redis.call('ZADD', k.holds, expires_at, order_id)
    redis.call('HINCRBY', k.counts, 'held', 1)
  else
    redis.call('HINCRBY', k.counts, 'confirmed', 1)
  end
  redis.call('HSET', k.orders, order_id, cjson.encode({
    order_id = order_id, drop_id = drop_id, pid = pid, sub = sub, serial = serial,
    status = status, created_at = now, expires_at = expires_at,
  }))
  redis.call('XADD', k.events, '*', 'type', event, 'drop', drop_id, 'order', order_id,
    'serial', serial, 'pid', pid, 'sub', sub, 'status', status, 'expires_at', expires_at)
  return serial, status, expires_at
end
