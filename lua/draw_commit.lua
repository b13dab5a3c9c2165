--[[
  Publish a draw: the written order becomes the draw order, the seed is revealed next to the
  entries digest, and the queue starts at its head. Fair-start arrivals that came after the
  window (in arrival order) are queued behind the drawn ones.
  Input:
    KEYS[1] meta   KEYS[2] draw   KEYS[3] draw_lock   KEYS[4] draw_order_tmp   KEYS[5] ranks_tmp
    KEYS[6] draw_order   KEYS[7] ranks   KEYS[8] events   KEYS[9] late   KEYS[10] entries
    ARGV[1] lock token   ARGV[2] entries digest (hex)   ARGV[3] number of entries drawn
  Output:
    {0, drawn_at_ms}  published      {1}  the lock is not ours: nothing written
]]
--- @include "clock"
if redis.call('GET', KEYS[3]) ~= ARGV[1] then
  return {1}
end
local count = tonumber(ARGV[3])
if redis.call('LLEN', KEYS[4]) ~= count then
  return redis.error_reply('ERR draw order has ' .. redis.call('LLEN', KEYS[4]) .. ' items, expected ' .. count)
end
local now = now_ms()
redis.call('UNLINK', KEYS[6], KEYS[7])
if count > 0 then
  redis.call('RENAME', KEYS[4], KEYS[6])
  redis.call('RENAME', KEYS[5], KEYS[7])
end
local rank = count
for _, pid in ipairs(redis.call('LRANGE', KEYS[9], 0, -1)) do
  local entry = redis.call('HGET', KEYS[10], pid)
  local receipt = string.match(entry, '^%S+ (%S+)')
  redis.call('RPUSH', KEYS[6], receipt .. ' ' .. pid)
  redis.call('HSET', KEYS[7], pid, rank)
  rank = rank + 1
end
redis.call('DEL', KEYS[9])
local meta = redis.call('HMGET', KEYS[1], 'id', 'seed')
redis.call('HSET', KEYS[2], 'state', 'drawn', 'seed', meta[2], 'digest', ARGV[2],
  'count', count, 'drawn_at', now, 'next', 0)
redis.call('XADD', KEYS[8], '*', 'type', 'drawn', 'drop', meta[1], 'entries', count,
  'digest', ARGV[2])
redis.call('DEL', KEYS[3])
return {0, now}
