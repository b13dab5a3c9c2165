--[[
  Function to measure live demand as an exponentially decaying rate (events per second averaged
  over a window of about tau), one hash field per measured thing. One stored value per field,
  no per-second buckets to clean up, and it falls by itself once the load stops.
    key      the drop's demand hash
    field    what is measured ('g' for the whole drop, 'ip:<prefix>' for one IP prefix)
    now_us   the Redis clock, microseconds
    tau_us   the averaging window, microseconds
    n        events to record now (0: only read the decayed rate, write nothing)
  Returns the rate after recording, in events per second.
]]
local function demand_add(key, field, now_us, tau_us, n)
  local rate = 0
  local stored = redis.call('HGET', key, field)
  if stored then
    local sep = string.find(stored, '|', 1, true)
    local old_rate, old_t = tonumber(string.sub(stored, 1, sep - 1)), tonumber(string.sub(stored, sep + 1))
    rate = old_rate * math.exp(-math.max(now_us - old_t, 0) / tau_us)
  end
  if n > 0 then
    rate = rate + n * 1e6 / tau_us
    redis.call('HSET', key, field, string.format('%.6f|%d', rate, now_us))
  end
  return rate
end
