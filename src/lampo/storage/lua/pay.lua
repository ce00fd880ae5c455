-- pay a batch: KEYS[1] event base; on one server, KEYS[1 + i] is the payment id key of
--   request i (<prefix>px:<payment id>, a hash: 'hold', and 'paid' once it settled it),
--   checked and written here; on a cluster those keys lie in other slots, so only KEYS[1]
--   is given and the client claims the payment id around the script (claim.lua).
-- ARGV: event, then per request: hold id, payment id, now (microseconds), now (ISO),
--   amount ('' when not checked), currency.
-- A repeated payment id returns the order as it is (refused if it states another
-- amount); one that settled another hold is refused; the other checks mirror Hold.pay.
-- The accepted payments' writes are made at the end (flush), one command per key.
USES = {
  [K_STOCK] = true, [K_DUE] = true, [K_OU] = true, [K_OA] = true, [K_LU] = true, [K_LA] = true,
}
local PAID = {}  -- payment id keys this call settles: key -> hold id

local function pay_one(id, pid, now_us, now_iso, amount, currency, pkey)
  local h = hkey(id)
  local t, broken = load_checked(h)
  if broken then
    return {'corrupt', broken}
  end
  if not t.s then
    return {'unknown-hold'}
  end
  local x = t.x
  if t.s ~= 'held' and t.p == pid then
    if amount ~= '' and (amount ~= x[D_AMT] or currency ~= x[D_CUR]) then
      return {'payment-id'}  -- the same payment id with another amount: no retry of it
    end
    return {'same', view(t)}
  end
  if pkey then
    if PAID[pkey] then
      return {'payment-id'}
    end
    if not kind_ok(pkey, 'hash') then
      return {'corrupt', pkey .. ' is not a hash'}
    end
    if redis.call('HGET', pkey, 'paid') then
      return {'payment-id'}
    end
  end
  local amt, cur = x[D_AMT], x[D_CUR]
  if amount ~= '' and (amount ~= amt or currency ~= cur) then
    return {'amount', amt, cur}
  end
  if t.s == 'paid' then
    return {'already-paid', t.p or ''}
  end
  if (t.s == 'held' and tonumber(now_us) >= x[D_DEADLINE]) or t.s == 'expired' then
    return {'hold-expired', view(t)}
  end
  if t.s ~= 'held' then
    return {'illegal-transition', t.s}
  end
  local p = plan()  -- every write checked before the first (_lib.lua, "Guards")
  local bad = move(p, t, 'h', 's') or count(p, t, 1)
  if bad then
    return {'corrupt', bad}
  end
  commit(p)
  hset(h, t, 's', 'paid', 'p', pid, 'pa', now_iso, 'e', now_iso)
  ZREMS[#ZREMS + 1] = id
  if pkey then
    PAID[pkey] = id
  end
  return {'ok', view(t)}
end

local out = {}
for a = 2, #ARGV, 6 do
  local n = #out + 1
  out[n] = pay_one(ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5],
    KEYS[1 + n])
end
flush()
for pkey, id in pairs(PAID) do
  redis.call('HSET', pkey, 'hold', id, 'paid', '1')
end
return out
