--[[
  Close a drop now: purchases and entries are refused from this moment. Closing twice keeps the
  first closing time.
  Input:
    KEYS[1] meta    hash: the drop's configuration (field closed_at)
    KEYS[2] events  stream: the drop's events
    ARGV    none
  Output:
    {1, closed_at_ms}  closed now
    {2, closed_at_ms}  was already closed
    {0}                no such drop
]]
--- @include "clock"
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0}
end
local closed = redis.call('HGET', KEYS[1], 'closed_at')
if closed then
  return {2, tonumber(closed)}
end
local now = now_ms()
redis.call('HSET', KEYS[1], 'closed_at', now)
redis.call('XADD', KEYS[2], '*', 'type', 'closed', 'drop', redis.call('HGET', KEYS[1], 'id'))
return {1, now}
