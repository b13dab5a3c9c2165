--[[
  Functions every gated attempt (purchase, lottery entry) shares: the idempotent replay, the
  rate limits and single-use ticket checked before any write, and the bookkeeping that makes
  an attempt count. Requires include "gcra".
    a   the attempt: {counts, idem, ticket (keys); idem_field, fingerprint, ticket_expiry;
        limiter_key (first limiter's KEYS index), limiter_arg (first triple's ARGV index)}
]]

-- The first answer to a retried request ({7} if the key came with another request), or nil.
local function attempt_replay(a)
  if a.idem_field == '' then
    return nil
  end
  local stored = redis.call('HGET', a.idem, a.idem_field)
  if not stored then
    return nil
  end
  local first = cjson.decode(stored)
  if first[1] ~= a.fingerprint then
    return {7}
  end
  return first[2]
end

-- Rate limits, then the ticket: returns the limiters to charge, or nil and the refusal.
local function attempt_admit(a, now_us)
  local limiters, err = gcra_check_all(KEYS, a.limiter_key, ARGV, a.limiter_arg, 3, now_us)
  if limiters == nil then
    return nil, redis.error_reply(err)
  end
  local verdict = gcra_verdict(limiters)
  if verdict[1] == 1 then
    redis.call('HINCRBY', a.counts, 'rej:rate_limited', 1)  -- the only write of a limited attempt
    return nil, {6, verdict[2], verdict[3], verdict[4], verdict[5], verdict[6]}
  end
  if a.ticket_expiry > 0 and redis.call('EXISTS', a.ticket) == 1 then
    -- A replay is an attempt too: charged, so replaying costs a bot its rate like anything.
    gcra_commit_all(KEYS, a.limiter_key, limiters)
    redis.call('HINCRBY', a.counts, 'rej:pow_replayed', 1)
    return nil, {5}
  end
  return limiters
end

-- The attempt counts: charge the limiters, spend the ticket, count a refusal (reason ~= nil)
-- and remember the reply for retries. Returns the reply.
local function attempt_finish(a, limiters, now, reply, reason)
  gcra_commit_all(KEYS, a.limiter_key, limiters)
  if a.ticket_expiry > 0 then
    redis.call('SET', a.ticket, 1, 'PX', math.max(a.ticket_expiry - now, 1000))
  end
  if reason then
    redis.call('HINCRBY', a.counts, 'rej:' .. reason, 1)
  end
  if a.idem_field ~= '' then
    redis.call('HSET', a.idem, a.idem_field, cjson.encode({a.fingerprint, reply}))
  end
  return reply
end
