--[[
  FCFS purchase: every check and every write of one purchase attempt, atomically, in one round
  trip: rate limits (person, IP prefix, device), the single-use proof-of-work ticket, the drop's
  window, the per-person limit and the stock. Reads and decides first; writes only once the
  outcome is known. A rate-limited attempt writes only its rejection counter (the same ticket
  may be retried after Retry-After); any other attempt is charged to the limiters and consumes
  its ticket.
  Fair start (meta fair_start_ms > 0): until the window's draw is published, an attempt is
  recorded as pending (arrivals inside the window take part in the draw; later ones queue in
  arrival order behind them); after it, while persons still wait in the queue, a newcomer joins
  the end of the queue; once the queue is served, purchases are plain first come first served.
  Input:
    KEYS[1] meta      hash: drop configuration (supply, opens_at, closes_at, closed_at, ...)
    KEYS[2] counts    hash: next_serial, held, confirmed, rej:<reason>
    KEYS[3] free      list: serials returned to stock
    KEYS[4] persons   hash: pid -> units held or confirmed
    KEYS[5] orders    hash: order_id -> order JSON
    KEYS[6] holds     zset: order_id by hold expiry (ms)
    KEYS[7] idem      hash: "<pid>:<idempotency key>" -> {fingerprint, reply}
    KEYS[8] events    stream: the drop's events
    KEYS[9] porders   hash: pid -> space-separated order ids
    KEYS[10] ticket   string: marks the PoW challenge id as used (any key of the drop when
                      the drop has no PoW)
    KEYS[11] rl person  KEYS[12] rl ip  KEYS[13] rl device   GCRA limiter keys
    KEYS[14] entries  KEYS[15] late  KEYS[16] draw  KEYS[17] draw_order  KEYS[18] ranks
                      (fair start: arrivals, late arrivals, the draw and its queue)
    ARGV[1] pid        person id (limits count per person)
    ARGV[2] sub        account id
    ARGV[3] order_id   fresh random id for a new order; a retry after a lost reply sends the
                       same one and gets the same order back
    ARGV[4] idem       "<pid>:<Idempotency-Key>" or "" when the request has none
    ARGV[5] fingerprint  hash of the request body, to refuse a key reused for another request
                       ("" when ARGV[4] is "": nothing to compare with)
    ARGV[6] ticket expiry, ms since the epoch; 0 when the drop has no PoW
    ARGV[7..15] three limiter triples (emission_us, burst, quantity) for KEYS[11..13];
                (0, 0, 0) switches one off (see include/gcra.lua)
    ARGV[16] entry_id   ARGV[17] receipt   (fair start: this attempt's place in the draw)
    ARGV[18..] fresh order ids (fair start: for serving the queue's head)
  Output (first element is the code):
    {0, serial, status, expires_at_ms, order_id}  allocated ("held" or "confirmed")
    {1, opens_at_ms}   not_open
    {2}                closed
    {3}                sold_out
    {4, limit}         limit_reached
    {5}                pow_replayed: the ticket was used before
    {6, index, limit, remaining, retry_after_ms, reset_after_ms}  rate limited (index 1..3:
                       person, ip, device); only the rejection is counted; not stored for
                       idempotency
    {7}                idempotency key reused with another request
    {8}                no such drop
    {9}                fair start: this person already waits in the queue
    {10, entry_id, receipt, serves_at_ms}  fair start: pending; the outcome shows in /me (also
                       the answer to this request sent again after a lost reply)
  A reply other than {6}, {7} and {8} is stored under the idempotency key and returned to
  retries.
]]
--- @include "gcra"
--- @include "attempt"
--- @include "allocate"
--- @include "promote"
local K_META, K_COUNTS, K_FREE, K_PERSONS = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_ORDERS, K_HOLDS, K_EVENTS, K_PORDERS = KEYS[5], KEYS[6], KEYS[8], KEYS[9]
local pid, sub, order_id = ARGV[1], ARGV[2], ARGV[3]
local attempt = {counts = K_COUNTS, idem = KEYS[7], ticket = KEYS[10], idem_field = ARGV[4],
  fingerprint = ARGV[5], ticket_expiry = tonumber(ARGV[6]), limiter_key = 11, limiter_arg = 7}

local replay = attempt_replay(attempt)
if replay then
  return replay
end
local existing = redis.call('HGET', K_ORDERS, order_id)
if existing then  -- this very request, sent again after a lost reply
  local o = cjson.decode(existing)
  return {0, o.serial, o.status, o.expires_at, o.order_id}
end

local meta = redis.call('HMGET', K_META, 'id', 'supply', 'opens_at', 'closes_at', 'closed_at',
  'per_person_limit', 'hold_ms', 'fair_start_ms')
if not meta[1] then
  return {8}
end
local drop_id, supply, opens_at = meta[1], tonumber(meta[2]), tonumber(meta[3])
local closes_at, closed_at = tonumber(meta[4]), meta[5]
local limit, hold_ms, fair_start_ms = tonumber(meta[6]), tonumber(meta[7]), tonumber(meta[8])
local now_us = gcra_now_us()
local now = math.floor(now_us / 1000)

-- Fair start, while the draw is pending or its queue is served: this very request, sent again
-- after a lost reply, finds its own entry. Checked before the limits and the ticket, which its
-- first sending has already spent.
local entry_id, receipt, window_end = ARGV[16], ARGV[17], opens_at + fair_start_ms
local pending_phase, drawn, mine = false, false, nil
if fair_start_ms > 0 then
  local draw = redis.call('HMGET', KEYS[16], 'state', 'next')
  drawn = draw[1] == 'drawn'
  pending_phase = not drawn or tonumber(draw[2]) < redis.call('LLEN', KEYS[17])
  if pending_phase then
    mine = redis.call('HGET', KEYS[14], pid)
    if mine and string.sub(mine, 1, #entry_id + 1) == entry_id .. ' ' then
      return {10, entry_id, receipt, math.max(window_end, now)}
    end
  end
end

local limiters, refusal = attempt_admit(attempt, now_us)
if not limiters then
  return refusal
end

-- From here on the attempt counts: it is charged and its ticket is spent, whatever the outcome.
local function finish(reply, reason)
  return attempt_finish(attempt, limiters, now, reply, reason)
end

if now < opens_at then
  return finish({1, opens_at}, 'not_open')
end
if closed_at or (closes_at > 0 and now >= closes_at) then
  return finish({2}, 'closed')
end
local owned = tonumber(redis.call('HGET', K_PERSONS, pid) or '0')
if owned >= limit then
  return finish({4, limit}, 'limit_reached')
end
local k = {counts = K_COUNTS, free = K_FREE, persons = K_PERSONS, orders = K_ORDERS,
  holds = K_HOLDS, events = K_EVENTS, porders = K_PORDERS, meta = K_META, draw = KEYS[16],
  draw_order = KEYS[17], entries = KEYS[14]}

if pending_phase then  -- read above; nothing has written since
  if mine then  -- not this request's own entry
    return finish({9}, 'already_pending')
  end
  local early = (not drawn and now < window_end) and '1' or '0'
  redis.call('HSET', k.entries, pid, entry_id .. ' ' .. receipt .. ' ' .. sub .. ' ' .. early)
  redis.call('HINCRBY', K_COUNTS, 'entries', 1)
  if not drawn then
    if early == '0' then
      redis.call('RPUSH', KEYS[15], pid)  -- queued behind the draw at its commit
    end
  else
    redis.call('HSET', KEYS[18], pid, redis.call('LLEN', k.draw_order))
    redis.call('RPUSH', k.draw_order, receipt .. ' ' .. pid)
    promote(k, now, ARGV, 18)  -- serve the head of the queue: maybe this very attempt
  end
  redis.call('XADD', K_EVENTS, '*', 'type', 'pending', 'drop', drop_id, 'pid', pid,
    'sub', sub, 'receipt', receipt)
  return finish({10, entry_id, receipt, math.max(window_end, now)}, nil)
end

local source = stock_source(k, supply)
if not source then
  return finish({3}, 'sold_out')
end

local serial, status, expires_at = allocate(k, source, drop_id, pid, sub, order_id, now, hold_ms,
  'allocated')
return finish({0, serial, status, expires_at, order_id}, nil)
