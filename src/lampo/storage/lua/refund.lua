-- refund a batch: KEYS[1] event base. ARGV: count, then per request: hold id, now (ISO).
-- The units go back to the pool, the order out of the live totals.
local function refund_one(id, now_iso)
  local h = hkey(id)
  local t, flat = load(h)
  if not t.state then
    return {'unknown-hold'}
  end
  if t.state == 'refunded' then
    return {'same', flat}
  end
  if t.state ~= 'paid' then
    return {'illegal-transition', t.state}
  end
  to_pool(t, 's')
  redis.call('HSET', h, 'state', 'refunded', 'refunded_at', now_iso)
  count(t, 'n')
  return {'ok', redis.call('HGETALL', h)}
end

local out = {}
for r = 0, tonumber(ARGV[1]) - 1 do
  out[r + 1] = refund_one(ARGV[2 + 2 * r], ARGV[3 + 2 * r])
end
return out
