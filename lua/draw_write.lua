--[[
  Append one batch of the draw order to the temporary list and set the ranks of its people in
  the temporary hash. The caller bounds the batch, so Redis is never busy long. Safe to send
  again after a lost reply: the batch names the place it starts at, and a batch that is already
  in the list is not written twice.
  Input:
    KEYS[1] draw_lock   KEYS[2] draw_order_tmp   KEYS[3] ranks_tmp
    ARGV[1] lock token   ARGV[2] lock lifetime, ms (renewed)
    ARGV[3] start: the rank of the first item, which is also the length the list must have
    ARGV[4 ..] the items in draw order, each "receipt pid" (the receipt is 64 hex characters,
               so the pid starts at character 66); the item ARGV[3 + i] gets rank start + i - 1
  Output:
    {0}          written: the items appended, their pids ranked start, start + 1, ...
    {1}          the lock is not ours any more: nothing written, stop
    {2, length}  this batch is in the list already (sent again after a lost reply): nothing
                 written, go on
    {3, length}  the list does not end where this batch starts (a batch is missing): nothing
                 written, stop
    error        an item that is not "receipt pid": nothing written
]]
local call = redis.call
if call('GET', KEYS[1]) ~= ARGV[1] then
  return {1}
end
local start = tonumber(ARGV[3])
local last = #ARGV
local length = call('LLEN', KEYS[2])
if length ~= start then
  -- Items are unique, and one attempt (one lock token) writes its order from the head in
  -- order: the batch's last item at its place means the whole batch is there.
  if last > 3 and length >= start + last - 3
      and call('LINDEX', KEYS[2], start + last - 4) == ARGV[last] then
    return {2, length}
  end
  return {3, length}
end
-- Every item is checked before anything is written (a script error does not undo writes).
local byte, sub = string.byte, string.sub
local ranked = {}  -- pid, rank, pid, rank, ... in the order of the items
local n, rank = 0, start
for i = 4, last do
  local item = ARGV[i]
  if byte(item, 65) ~= 32 or #item < 66 then
    return redis.error_reply('ERR draw_write item ' .. (i - 3) .. ' is not "receipt pid"')
  end
  ranked[n + 1] = sub(item, 66)
  ranked[n + 2] = rank
  n = n + 2
  rank = rank + 1
end
-- In slices: unpack() is capped by Lua's C stack (about 8000 values).
local SLICE = 1000
for first = 4, last, SLICE do
  local stop = math.min(first + SLICE - 1, last)
  call('RPUSH', KEYS[2], unpack(ARGV, first, stop))
  call('HSET', KEYS[3], unpack(ranked, 2 * (first - 4) + 1, 2 * (stop - 3)))
end
call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return {0}
