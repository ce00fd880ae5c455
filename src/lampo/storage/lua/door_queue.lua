-- The front door: a queue's joins, its freeze and a buyer's entry (storage/redis/door.py).
-- KEYS[1]: the queue's hash (seed, pre, frozen, last, since, base, rate); KEYS[2]: its
-- entries (buyer -> "ticket joined seq [rank]"); KEYS[3]: its pre-queue, a sorted set of
-- "rank:buyer" members (rank: 16 hex digits, so members sort by rank, then buyer).
-- ARGV[1]: 'join', 'freeze' or 'entry'; then the buyer, ticket, joined, rank ('' none),
-- and the admission line kept while the queue has none: since, base, rate ('' none).
--
-- The freeze is lazy: it fixes P (the pre-queue's size) and closes the pre-queue; a
-- member's seq is then its rank in the sorted set + 1, which nothing changes any more.
-- Joins after it get P + 1, P + 2, ... from the queue's counter.
local q, e, p = KEYS[1], KEYS[2], KEYS[3]
local op, buyer = ARGV[1], ARGV[2]
-- Guards (as lua/_lib.lua's): Redis does not roll a script back, so every key this
-- script writes is checked to be absent or of its type before the first write; a wrong
-- one is an error starting CORRUPT (storage/redis/door.py: CorruptStore), nothing written.
local function guard(key, want)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= want then
    return redis.error_reply('CORRUPT ' .. key .. ' is a ' .. t .. ', not a ' .. want)
  end
  return nil
end
local bad = guard(q, 'hash') or guard(e, 'hash') or guard(p, 'zset')
if bad then
  return bad
end
for _, field in ipairs({'pre', 'last', 'since', 'base', 'rate'}) do
  local v = redis.call('HGET', q, field)
  if v and not string.match(v, '^%d+$') then
    return redis.error_reply('CORRUPT ' .. q .. ' ' .. field .. ' is not a count: ' .. v)
  end
end

local function freeze()
  if redis.call('HGET', q, 'frozen') ~= '1' then
    local size = redis.call('ZCARD', p)
    redis.call('HSET', q, 'frozen', '1', 'pre', size, 'last', size)
  end
  return tonumber(redis.call('HGET', q, 'pre'))
end

-- A numbered join that finds the line caught up with the queue (everyone in it admitted
-- at `now`) restarts it there, at the queue's length `last` (both strings of digits, as
-- stored): a lull banks no admissions (storage/_door.py, caught_up). Integer arithmetic
-- on whole seconds and their remainder, so no product leaves a double's 53 bits.
local function restart_if_caught_up(now, last)
  local line = redis.call('HMGET', q, 'since', 'base', 'rate')
  local since, base, rate = line[1], line[2], line[3]
  if not rate then
    since, base, rate = ARGV[6], ARGV[7], ARGV[8]
  end
  if not rate or rate == '' then
    return
  end
  local el = tonumber(now) - tonumber(since)
  if el <= 0 then
    return
  end
  local whole = math.floor(el / 1000000)
  local part = el - whole * 1000000
  local r = tonumber(rate)
  local admitted = tonumber(base) + r * whole + math.floor(r * part / 1000000)
  if admitted >= tonumber(last) then
    redis.call('HSET', q, 'since', now, 'base', last, 'rate', rate)
  end
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
restart_if_caught_up(joined, redis.call('HGET', q, 'last'))
local seq = redis.call('HINCRBY', q, 'last', 1)
redis.call('HSET', e, buyer, ticket .. ' ' .. joined .. ' ' .. seq)
return {ticket, joined, seq}
