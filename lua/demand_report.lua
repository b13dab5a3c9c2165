--[[
  One server process reports the challenge requests it served since its last report, and
  learns the drop's demand as every process together made it, plus what it needs to answer
  challenge requests without Redis until the next report: the Redis clock and the closing.
  Demand is a decaying rate per drop and per IP prefix (include/demand.lua); only identified
  persons are counted (the identity token is checked before a request is counted).
  Input:
    KEYS[1] meta     hash: the drop's configuration (closed_at)
    KEYS[2] demand   hash: decaying demand rates ('g', 'ip:<prefix>')
    ARGV[1] tau, the demand window, microseconds (> 0)
    ARGV[2] requests for the whole drop since the last report (>= 0)
    ARGV[3], ARGV[4], ...  pairs: IP prefix, requests from it since the last report
  Output:
    {0, now_ms, closed_at_ms (0 = open), drop_rate_milli, prefix_rate_milli ...}
        rates in thousandths of a request per second, prefixes in ARGV order
    {8}  no such drop
    error BADARGS  a count or tau that is not a decimal integer; nothing written
]]
--- @include "demand"
local tau = tonumber(ARGV[1])
local counts = {}
if tau == nil or tau <= 0 or #ARGV % 2 ~= 0 then
  return redis.error_reply('BADARGS tau must be > 0 and prefixes come in pairs')
end
for i = 2, #ARGV, 2 do
  local n = ARGV[i]
  if not string.match(n, '^%d+$') then
    return redis.error_reply('BADARGS request counts must be decimal integers')
  end
  counts[#counts + 1] = tonumber(n)
end
local closed_at = redis.call('HGET', KEYS[1], 'closed_at')
if not closed_at and redis.call('EXISTS', KEYS[1]) == 0 then
  return {8}
end
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local reply = {0, math.floor(now_us / 1000), tonumber(closed_at or 0)}
reply[4] = math.floor(demand_add(KEYS[2], 'g', now_us, tau, counts[1]) * 1000)
for i = 3, #ARGV, 2 do
  local rate = demand_add(KEYS[2], 'ip:' .. ARGV[i], now_us, tau, counts[(i + 1) / 2])
  reply[#reply + 1] = math.floor(rate * 1000)
end
return reply
