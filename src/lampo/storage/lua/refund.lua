-- refund a batch: KEYS[1] event base. ARGV: event, then per request: hold id, now (ISO).
-- The units go back to the pool, the order out of the live totals. Writes made at the
-- end (flush).
USES = {
  [K_STOCK] = true, [K_CNT] = true, [K_OU] = true, [K_OA] = true, [K_LU] = true, [K_LA] = true,
}
local function refund_one(id, now_iso)
  local h = hkey(id)
  local t, broken = load_checked(h)
  if broken then
    return {'corrupt', broken}
  end
  if not t.s then
    return {'unknown-hold'}
  end
  if t.s == 'refunded' then
    return {'same', view(t)}
  end
  if t.s ~= 'paid' then
    return {'illegal-transition', t.s}
  end
  local p = plan()  -- every write checked before the first (_lib.lua, "Guards")
  local bad = to_pool(p, t, 's') or count(p, t, -1)
  if bad then
    return {'corrupt', bad}
  end
  commit(p)
  hset(h, t, 's', 'refunded', 'r', now_iso)
  return {'ok', view(t)}
end

local out = {}
for a = 2, #ARGV, 2 do
  out[#out + 1] = refund_one(ARGV[a], ARGV[a + 1])
end
flush()
return out
