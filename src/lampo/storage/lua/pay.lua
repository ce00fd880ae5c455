-- pay a batch: KEYS[1] event base.
-- ARGV: count, then per request: hold id, payment id, now (microseconds), now (ISO),
--   amount ('' when not checked), currency.
-- A repeated payment id returns the order as it is; checks mirror Hold.pay.
local function pay_one(id, pid, now_us, now_iso, amount, currency)
  local h = hkey(id)
  local t, flat = load(h)
  if not t.state then
    return {'unknown-hold'}
  end
  if t.state ~= 'held' and t.payment_id == pid then
    return {'same', flat}
  end
  if amount ~= '' and (amount ~= t.amt or currency ~= t.cur) then
    return {'amount', t.amt, t.cur}
  end
  if t.state == 'paid' then
    return {'already-paid', t.payment_id}
  end
  if (t.state == 'held' and tonumber(now_us) >= tonumber(t.exp)) or t.state == 'expired' then
    return {'hold-expired'}
  end
  if t.state ~= 'held' then
    return {'illegal-transition', t.state}
  end
  for i = 1, tonumber(t.n) do
    local sku, q = t['s' .. i], tonumber(t['q' .. i])
    redis.call('HINCRBY', K_STOCK, 'h:' .. sku, -q)
    redis.call('HINCRBY', K_STOCK, 's:' .. sku, q)
  end
  redis.call('HSET', h, 'state', 'paid', 'payment_id', pid, 'paid_at', now_iso, 'ended_at', now_iso)
  redis.call('ZREM', K_DUE, id)
  count(t, '')
  return {'ok', redis.call('HGETALL', h)}
end

local out = {}
for r = 0, tonumber(ARGV[1]) - 1 do
  local a = 2 + 6 * r
  out[r + 1] = pay_one(ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5])
end
return out
