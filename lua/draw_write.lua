--[[
  Append one batch of the draw order (bounded by the caller, so Redis is never busy long).
  Input:
    KEYS[1] draw_lock   KEYS[2] draw_order_tmp   KEYS[3] ranks_tmp
    ARGV[1] lock token   ARGV[2] lock lifetime, ms (renewed)   ARGV[3] rank of the first item
    ARGV[4..] receipt, pid, receipt, pid, ... in draw order
  Output:
    {0}  written      {1}  the lock is not ours any more: nothing written, stop
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {1}
end
local rank = tonumber(ARGV[3])
local items, ranks = {}, {}
for i = 4, #ARGV, 2 do
  items[#items + 1] = ARGV[i] .. ' ' .. ARGV[i + 1]
  ranks[#ranks + 1] = ARGV[i + 1]
  ranks[#ranks + 1] = rank
  rank = rank + 1
end
-- unpack() is capped by Lua's C stack (about 8000 values): push in slices of 1000 items.
local SLICE = 1000
for first = 1, #items, SLICE do
  local last = math.min(first + SLICE - 1, #items)
  redis.call('RPUSH', KEYS[2], unpack(items, first, last))
  redis.call('HSET', KEYS[3], unpack(ranks, 2 * first - 1, 2 * last))
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return {0}
