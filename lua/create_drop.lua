--[[
  Create a drop, once: refuses when a drop with this id already exists.
  Input:
    KEYS[1] meta    hash: the drop's configuration
    KEYS[2] counts  hash: live counters
    ARGV    field/value pairs of the meta hash (id, platform, supply, mode, opens_at, ...)
  Output:
    {1, created_at_ms}  created
    {0}                 a drop with this id exists; nothing written
]]
--- @include "clock"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0}
end
if #ARGV == 0 or #ARGV % 2 ~= 0 then
  return redis.error_reply('ERR create_drop needs field/value pairs')
end
local now = now_ms()
redis.call('HSET', KEYS[1], 'created_at', now, unpack(ARGV))
redis.call('HSET', KEYS[2], 'next_serial', 0, 'held', 0, 'confirmed', 0)
return {1, now}
