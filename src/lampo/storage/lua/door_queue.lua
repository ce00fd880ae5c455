-- The front door: a queue's joins, its freeze and a buyer's entry (storage/redis/door.py).
-- KEYS[1]: the queue's hash (seed, pre, frozen, last, since, base, rate); KEYS[2]: its
-- entries (buyer -> "ticket joined seq [rank]"); KEYS[3]: its pre-queue, a sorted set of
-- "rank:buyer" members (rank: 16 hex digits, so members sort by rank, then buyer).
-- ARGV[1]: 'join', 'freeze' or 'entry'; then the buyer, ticket, joined, rank ('' none).
--
-- The freeze is lazy: it fixes P (the pre-queue's size) and closes the pre-queue; a
-- member's seq is then its rank in the sorted set + 1, which nothing changes any more.
-- Joins after it get P + 1, P + 2, ... from the queue's counter.
local q, e, p = KEYS[1], KEYS[2], KEYS[3]
local op, buyer = ARGV[1], ARGV[2]

local function freeze()
  if redis.call('HGET', q, 'frozen') ~= '1' then
    local size = redis.call('ZCARD', p)
    redis.call('HSET', q, 'frozen', '1', 'pre', size, 'last', size)
  end
  return tonumber(redis.call('HGET', q, 'pre'))
end

local function answer(record)
  -- "ticket joined seq [rank]": the seq of a pre-queue member is its place once frozen
  local ticket, joined, seq, rank = string.match(record, '^(%S+) (%S+) (%S+) ?(%S*)$')
  if seq == '0' and redis.call('HGET', q, 'frozen') == '1' then
    seq = redis.call('ZRANK', p, rank .. ':' .. buyer) + 1
  end
  return {ticket, joined, tonumber(seq)}
end

if op == 'freeze' then
  return freeze()
end
local found = redis.call('HGET', e, buyer)
if op == 'entry' then
  if not found then
    return false
  end
  return answer(found)
end
-- join
if found then
  return answer(found)
end
local ticket, joined, rank = ARGV[3], ARGV[4], ARGV[5]
if rank ~= '' and redis.call('HGET', q, 'frozen') ~= '1' then
  redis.call('HSET', e, buyer, ticket .. ' ' .. joined .. ' 0 ' .. rank)
  redis.call('ZADD', p, 0, rank .. ':' .. buyer)
  redis.call('HINCRBY', q, 'pre', 1)
  return {ticket, joined, 0}
end
freeze()
local seq = redis.call('HINCRBY', q, 'last', 1)
redis.call('HSET', e, buyer, ticket .. ' ' .. joined .. ' ' .. seq)
return {ticket, joined, seq}
