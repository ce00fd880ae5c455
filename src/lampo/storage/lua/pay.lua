-- pay a batch: KEYS[1] event base.
-- ARGV: event, then per request: hold id, payment id, now (microseconds), now (ISO),
--   amount ('' when not checked), currency.
-- A repeated payment id returns the order as it is; checks mirror Hold.pay.
USES = {
  [K_STOCK] = true, [K_DUE] = true, [K_OU] = true, [K_OA] = true, [K_LU] = true, [K_LA] = true,
}
local function pay_one(id, pid, now_us, now_iso, amount, currency)
  local h = hkey(id)
  local t, broken = load_checked(h)
  if broken then
    return {'corrupt', broken}
  end
  if not t.state then
    return {'unknown-hold'}
  end
  if t.state ~= 'held' and t.payment_id == pid then
    return {'same', view(h)}
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
  return {'ok', view(h)}
end

local out = {}
for a = 2, #ARGV, 6 do
  out[#out + 1] = pay_one(ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5])
end
return out
