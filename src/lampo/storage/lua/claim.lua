-- A payment id's key: KEYS[1] is <prefix>px:<payment id>, a hash in a slot of its own:
-- 'hold' (the hold it is claimed for, or settled) and 'paid' ('1': it settled that hold;
-- written by pay.lua on one server, and by 'bind'); on a cluster, where pay.lua cannot
-- write it, 'n': the attempts claimed for that hold not known to have been refused.
-- See docs/storage-redis-postgres.md, "Payment ids on a cluster". ARGV: op, hold id, and
-- for 'claim' the hold the client found the claim may be taken over from ('' for none)
-- and the most attempts it may count then ('' for any).
--   claim: {'ok'} (claimed for the hold: n + 1), {'bound'} (it settled another hold), or
--     {'other', hold, n} (claimed for another hold, not to be taken over): nothing written;
--   refused: an attempt for the hold was refused (n - 1), if still claimed for it;
--   bind: it settled the hold, unless it settled one already.
local key, op, id = KEYS[1], ARGV[1], ARGV[2]
-- every check before the first write (docs/architecture.md, "Atomicity of scripts")
if not kind_ok(key, 'hash') then
  return redis.error_reply('CORRUPT ' .. key .. ' is not a hash')
end
local cur = redis.call('HGET', key, 'hold')
local paid = redis.call('HGET', key, 'paid')
local n = small(redis.call('HGET', key, 'n') or '0')
if not n then
  return redis.error_reply('CORRUPT ' .. key .. ' has a malformed attempt count')
end
if op == 'claim' then
  if cur and cur ~= id then
    if paid then
      return {'bound'}
    end
    if cur ~= ARGV[3] or (ARGV[4] ~= '' and n > tonumber(ARGV[4])) then
      return {'other', cur, tostring(n)}
    end
    redis.call('DEL', key)  -- taken over: see the client's _claimed_by
  end
  redis.call('HSET', key, 'hold', id)
  redis.call('HINCRBY', key, 'n', 1)
elseif op == 'refused' then
  if cur == id and n > 0 then
    redis.call('HINCRBY', key, 'n', -1)
  end
elseif op == 'bind' then
  if not paid then
    redis.call('HSET', key, 'hold', id, 'paid', '1')
  end
end
return {'ok'}
