--[[
  Admit a request for a proof-of-work challenge: the drop must be open, the person, IP prefix
  and device must be within their rate limits, and the request counts toward the drop's live
  demand (whole drop and this IP prefix), from which the difficulty level is derived. Only
  identified persons reach this script (the identity token is checked first), so anonymous
  floods cannot raise the difficulty for everyone else.
  Input:
    KEYS[1] meta       hash: the drop's configuration (opens_at, closes_at, closed_at)
    KEYS[2] demand     hash: decaying demand rates ('g', 'ip:<prefix>')
    KEYS[3] rl person  KEYS[4] rl ip  KEYS[5] rl device   GCRA limiter keys
    ARGV[1..9]  three limiter triples (emission_us, burst, quantity), person/ip/device order;
                (0, 0, 0) switches one off (see include/gcra.lua)
    ARGV[10] ip prefix           ARGV[11] demand window tau, microseconds
    ARGV[12] drop thresholds     comma-separated requests/s, e.g. '500,2000,8000'
    ARGV[13] ip-prefix thresholds  comma-separated requests/s from one prefix
  Output:
    {0, level, drop_rate_milli, ip_rate_milli, limit, remaining, reset_after_ms}  admitted
    {1, opens_at_ms}   not open yet
    {2}                closed
    {6, index, limit, remaining, retry_after_ms, reset_after_ms}  rate limited (index 1..3:
                       person, ip, device); nothing written
    {8}                no such drop
]]
--- @include "gcra"
--- @include "demand"
local meta = redis.call('HMGET', KEYS[1], 'opens_at', 'closes_at', 'closed_at')
if not meta[1] then
  return {8}
end
local now_us = gcra_now_us()
local now = math.floor(now_us / 1000)
local opens_at, closes_at = tonumber(meta[1]), tonumber(meta[2])
if now < opens_at then
  return {1, opens_at}
end
if meta[3] or (closes_at > 0 and now >= closes_at) then
  return {2}
end
local limiters, err = gcra_check_all(KEYS, 3, ARGV, 1, 3, now_us)
if limiters == nil then
  return redis.error_reply(err)
end
local verdict = gcra_verdict(limiters)
if verdict[1] == 1 then
  return {6, verdict[2], verdict[3], verdict[4], verdict[5], verdict[6]}
end

gcra_commit_all(KEYS, 3, limiters)
local tau = tonumber(ARGV[11])
local drop_rate = demand_hit(KEYS[2], 'g', now_us, tau)
local ip_rate = demand_hit(KEYS[2], 'ip:' .. ARGV[10], now_us, tau)
local level = math.max(demand_level(drop_rate, ARGV[12]), demand_level(ip_rate, ARGV[13]))
return {0, level, math.floor(drop_rate * 1000), math.floor(ip_rate * 1000),
  verdict[3], verdict[4], verdict[6]}
