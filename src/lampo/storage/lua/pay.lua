-- pay a batch: KEYS[1] event base; on one server, KEYS[1 + i] is the payment id key of
--   request i (<prefix>px:<payment id>, a hash: 'hold', and 'paid' once it settled it),
--   checked and written here; on a cluster those keys lie in other slots, so only KEYS[1]
--   is given and the client claims the payment id around the script (claim.lua).
-- ARGV: event, then per request: hold id, payment id, now (microseconds), now (ISO),
--   amount ('' when not checked), currency.
-- A repeated payment id returns the order as it is (refused if it states another
-- amount); one that settled another hold is refused; the other checks mirror Hold.pay.
USES = {
  [K_STOCK] = true, [K_DUE] = true, [K_OU] = true, [K_OA] = true, [K_LU] = true, [K_LA] = true,
}
local function pay_one(id, pid, now_us, now_iso, amount, currency, pkey)
  local h = hkey(id)
  local t, broken = load_checked(h)
  if broken then
    return {'corrupt', broken}
  end
  if not t.state then
    return {'unknown-hold'}
  end
  if t.state ~= 'held' and t.payment_id == pid then
    if amount ~= '' and (amount ~= t.t[T_AMT] or currency ~= t.t[T_CUR]) then
      return {'payment-id'}  -- the same payment id with another amount: no retry of it
    end
    return {'same', view(h)}
  end
  if pkey and not kind_ok(pkey, 'hash') then
    return {'corrupt', pkey .. ' is not a hash'}
  end
  if pkey and redis.call('HGET', pkey, 'paid') then
    return {'payment-id'}
  end
  local amt, cur = t.t[T_AMT], t.t[T_CUR]
  if amount ~= '' and (amount ~= amt or currency ~= cur) then
    return {'amount', amt, cur}
  end
  if t.state == 'paid' then
    return {'already-paid', t.payment_id}
  end
  if (t.state == 'held' and tonumber(now_us) >= tonumber(t.h[H_DEADLINE])) or t.state == 'expired' then
    return {'hold-expired', view(h)}
  end
  if t.state ~= 'held' then
    return {'illegal-transition', t.state}
  end
  local p = plan()  -- every write checked before the first (_lib.lua, "Guards")
  local bad = move(p, t, 'h', 's') or count(p, t, 1)
  if bad then
    return {'corrupt', bad}
  end
  apply(p)
  redis.call('HSET', h, 'state', 'paid', 'payment_id', pid, 'paid_at', now_iso, 'ended_at', now_iso)
  redis.call('ZREM', K_DUE, id)
  if pkey then
    redis.call('HSET', pkey, 'hold', id, 'paid', '1')
  end
  return {'ok', view(h)}
end

local out = {}
for a = 2, #ARGV, 6 do
  local n = #out + 1
  out[n] = pay_one(ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5],
    KEYS[1 + n])
end
return out
