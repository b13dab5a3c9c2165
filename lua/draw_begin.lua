--[[
  Start (or restart) a draw: refuses before the entries are frozen, takes the draw lock, and
  clears what an interrupted earlier attempt may have left half-written. The entries are frozen
  by time: every entry or arrival script compares the Redis clock with the same deadline, and
  scripts run one at a time, so none can slip in after this script has seen the deadline pass.
  Input:
    KEYS[1] meta   KEYS[2] draw   KEYS[3] draw_lock   KEYS[4] draw_order_tmp   KEYS[5] ranks_tmp
    ARGV[1] lock token (random, per attempt)   ARGV[2] lock lifetime, ms
  Output:
    {0, seed_hex, now_ms}  the lock is ours: read the entries, write the order, commit
    {1, due_at_ms}         too early: entries are still open until due_at
    {2}                    already drawn
    {3}                    another process holds the draw lock
    {8}                    no such drop, or a drop without a draw
]]
--- @include "clock"
local meta = redis.call('HMGET', KEYS[1], 'mode', 'opens_at', 'closes_at', 'closed_at',
  'fair_start_ms', 'seed')
if not meta[1] or not meta[6] then
  return {8}
end
if redis.call('HGET', KEYS[2], 'state') == 'drawn' then
  return {2}
end
local now = now_ms()
local due_at
if meta[1] == 'lottery' then
  due_at = tonumber(meta[3])
  if meta[4] then
    due_at = math.min(due_at, tonumber(meta[4]))
  end
else
  due_at = tonumber(meta[2]) + tonumber(meta[5])
end
if now < due_at then
  return {1, due_at}
end
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[1] then
  return {3}
end
redis.call('SET', KEYS[3], ARGV[1], 'PX', tonumber(ARGV[2]))
-- UNLINK frees a large half-written list in the background instead of blocking Redis.
redis.call('UNLINK', KEYS[4], KEYS[5])
redis.call('HSET', KEYS[2], 'state', 'drawing')
return {0, meta[6], now}
