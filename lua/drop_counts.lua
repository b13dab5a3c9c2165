--[[
  A drop's live counters as one snapshot, dated by the Redis clock (the drop and stats views).
  Read-only. A script rather than a MULTI: on Redis Cluster a transaction cannot carry TIME,
  which has no key to be routed by.
  Input:
    KEYS[1] meta    hash: the drop's configuration (closed_at)
    KEYS[2] counts  hash: next_serial, held, confirmed, entries, rej:<reason>
    KEYS[3] free    list: serials returned to stock
    ARGV            none
  Output:
    {closed_at_ms or '' while not closed, {field, value, ...} of counts, free serials,
     Redis time seconds, microseconds}
]]
local now = redis.call('TIME')
return {redis.call('HGET', KEYS[1], 'closed_at') or '', redis.call('HGETALL', KEYS[2]),
  redis.call('LLEN', KEYS[3]), now[1], now[2]}
