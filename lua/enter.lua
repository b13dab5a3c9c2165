--[[
  Lottery entry: every check and write of one entry attempt, atomically: rate limits, the
  single-use proof-of-work ticket, the entry window, and one entry per person (every account of
  a person shares its pid). Reads and decides first; writes once the outcome is known.
  Input:
    KEYS[1] meta     hash: drop configuration (opens_at, closes_at, closed_at)
    KEYS[2] counts   hash: counters ('entries', rej:<reason>)
    KEYS[3] entries  hash: pid -> "entry_id receipt sub 1"
    KEYS[4] idem     hash: "<pid>:<idempotency key>" -> {fingerprint, reply}
    KEYS[5] events   stream: the drop's events
    KEYS[6] ticket   string: marks the PoW challenge id as used (any key of the drop when the
                     drop has no PoW)
    KEYS[7] rl person  KEYS[8] rl ip  KEYS[9] rl device   GCRA limiter keys
    ARGV[1] pid   ARGV[2] sub
    ARGV[3] entry_id   fresh random id; a retry after a lost reply sends the same one
    ARGV[4] receipt    public hash of the entry (dropserver.lottery.receipt)
    ARGV[5] "<pid>:<Idempotency-Key>" or ""   ARGV[6] fingerprint of the request body ("" without
            an Idempotency-Key)
    ARGV[7] ticket expiry, ms since the epoch; 0 when the drop has no PoW
    ARGV[8..16] three limiter triples for KEYS[7..9] (see include/gcra.lua)
  Output:
    {0, entry_id, receipt}  entered
    {1, opens_at_ms}  not_open     {2} closed     {5} pow_replayed
    {6, index, limit, remaining, retry_after_ms, reset_after_ms}  rate limited, only the rejection counted
    {7} idempotency key reused with another request     {8} no such drop
    {9} already_entered: this person (under any account) has an entry
  Replies other than {6}, {7} and {8} are stored under the idempotency key.
]]
--- @include "gcra"
--- @include "attempt"
local K_META, K_COUNTS, K_ENTRIES, K_EVENTS = KEYS[1], KEYS[2], KEYS[3], KEYS[5]
local pid, sub, entry_id, receipt = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local attempt = {counts = K_COUNTS, idem = KEYS[4], ticket = KEYS[6], idem_field = ARGV[5],
  fingerprint = ARGV[6], ticket_expiry = tonumber(ARGV[7]), limiter_key = 7, limiter_arg = 8}

local replay = attempt_replay(attempt)
if replay then
  return replay
end
local existing = redis.call('HGET', K_ENTRIES, pid)
if existing and string.sub(existing, 1, #entry_id + 1) == entry_id .. ' ' then
  return {0, entry_id, receipt}  -- this very request, sent again after a lost reply
end

local meta = redis.call('HMGET', K_META, 'id', 'opens_at', 'closes_at', 'closed_at')
if not meta[1] then
  return {8}
end
local drop_id, opens_at, closes_at = meta[1], tonumber(meta[2]), tonumber(meta[3])
local now_us = gcra_now_us()
local now = math.floor(now_us / 1000)

local limiters, refusal = attempt_admit(attempt, now_us)
if not limiters then
  return refusal
end

local function finish(reply, reason)
  return attempt_finish(attempt, limiters, now, reply, reason)
end

if now < opens_at then
  return finish({1, opens_at}, 'not_open')
end
if meta[4] or now >= closes_at then
  return finish({2}, 'closed')
end
if existing then
  return finish({9}, 'already_entered')
end
redis.call('HSET', K_ENTRIES, pid, entry_id .. ' ' .. receipt .. ' ' .. sub .. ' 1')
redis.call('HINCRBY', K_COUNTS, 'entries', 1)
redis.call('XADD', K_EVENTS, '*', 'type', 'entered', 'drop', drop_id, 'pid', pid, 'sub', sub,
  'receipt', receipt)
return finish({0, entry_id, receipt}, nil)
