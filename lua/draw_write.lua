--[[
  Append one batch of the draw order (bounded by the caller, so Redis is never busy long).
  Input:
    KEYS[1] draw_lock   KEYS[2] draw_order_tmp   KEYS[3] ranks_tmp
    ARGV[1] lock token   ARGV[2] lock lifetime, ms (renewed)   ARGV[3] n, items in this batch
    ARGV[4 .. 3+n]        the items in draw order, each "receipt pid"
    ARGV[4+n .. 3+3n]     pid, rank, pid, rank, ... for the same items
  Output:
    {0}  written      {1}  the lock is not ours any more: nothing written, stop
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {1}
end
local n = tonumber(ARGV[3])
if #ARGV ~= 3 + 3 * n then
  return redis.error_reply('ERR draw_write expects ' .. (3 + 3 * n) .. ' arguments')
end
-- The caller joined the items and paired the ranks: the script only hands them to Redis, in
-- slices because unpack() is capped by Lua's C stack (about 8000 values).
local SLICE = 2000
for first = 4, 3 + n, SLICE do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, first, math.min(first + SLICE - 1, 3 + n)))
end
for first = 4 + n, 3 + 3 * n, 2 * SLICE do
  redis.call('HSET', KEYS[3], unpack(ARGV, first, math.min(first + 2 * SLICE - 1, 3 + 3 * n)))
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return {0}
