--[[
  Function to serve a drawn queue (lottery winners and waitlist; fair-start arrivals): while
  stock is available, the next person in draw order gets a hold, until the queue ends or the
  fresh order ids run out. Requires include "allocate".
    k         key names: counts, free, persons, orders, holds, events, porders, meta, draw,
              draw_order, entries
    ids       fresh random order ids (from the caller: Lua has no good randomness), first used
              at index ids_from
  Returns the number of persons promoted. Does nothing before the draw.
]]
local function promote(k, now, ids, ids_from)
  local draw = redis.call('HMGET', k.draw, 'state', 'next')
  if draw[1] ~= 'drawn' then
    return 0
  end
  local meta = redis.call('HMGET', k.meta, 'id', 'supply', 'hold_ms', 'per_person_limit')
  local drop_id, supply, hold_ms = meta[1], tonumber(meta[2]), tonumber(meta[3])
  local limit = tonumber(meta[4])
  local next_index, length = tonumber(draw[2]), redis.call('LLEN', k.draw_order)
  local promoted, used = 0, ids_from
  local source = stock_source(k, supply)
  while next_index < length and used <= #ids and source do
    local item = redis.call('LINDEX', k.draw_order, next_index)
    next_index = next_index + 1
    local space = string.find(item, ' ', 1, true)
    local pid = string.sub(item, space + 1)
    local entry = redis.call('HGET', k.entries, pid)
    local owned = tonumber(redis.call('HGET', k.persons, pid) or '0')
    if entry and owned < limit then
      local sub = string.match(entry, '^%S+ %S+ (%S+)')
      allocate(k, source, drop_id, pid, sub, ids[used], now, hold_ms, 'won')
      used = used + 1
      promoted = promoted + 1
      source = stock_source(k, supply)
    end
  end
  redis.call('HSET', k.draw, 'next', next_index)
  return promoted
end
