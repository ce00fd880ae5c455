-- A payment id's key: KEYS[1] is <prefix>px:<payment id>, a hash in a slot of its own:
-- 'hold' (the hold it is claimed for, or settled), 'paid' ('1' once a payment of that hold
-- with it succeeded: bound for good), 'n' (attempts under way, on a cluster).
-- ARGV: op, hold id, then for 'claim' the hold the client found unable ever to be paid
-- with this id ('' for none). See docs/storage-redis-postgres.md, "Payment ids on a
-- cluster".
--   claim: {'ok'} (claimed for the hold: n + 1), {'bound'} (it settled another hold), or
--     {'other', hold} (claimed for another hold, attempts under way): nothing written;
--   paid / refused: an attempt ended (n - 1; 'paid' binds the id), if still claimed for
--     that hold; else nothing;
--   bind: bound to the hold for good, unless it settled one already (orders paid before
--     payment ids had keys).
local key, op, id = KEYS[1], ARGV[1], ARGV[2]
local cur = redis.call('HGET', key, 'hold')
local paid = redis.call('HGET', key, 'paid')
if op == 'claim' then
  if cur and cur ~= id then
    if paid then
      return {'bound'}
    end
    if tonumber(redis.call('HGET', key, 'n') or '0') > 0 and cur ~= ARGV[3] then
      return {'other', cur}
    end
    -- every attempt for that hold ended refused, or it can never be paid with this id
    redis.call('DEL', key)
  end
  redis.call('HSET', key, 'hold', id)
  redis.call('HINCRBY', key, 'n', 1)
  return {'ok'}
elseif op == 'bind' then
  if not paid then
    redis.call('HSET', key, 'hold', id, 'paid', '1')
  end
  return {'ok'}
end
if cur == id then
  local n = tonumber(redis.call('HGET', key, 'n') or '0')
  if op == 'paid' then
    redis.call('HSET', key, 'paid', '1')
  end
  if n > 0 then
    redis.call('HINCRBY', key, 'n', -1)
  end
end
return {'ok'}
