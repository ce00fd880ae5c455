-- release a batch: KEYS[1] event base. ARGV: event, then per request: hold id, now (ISO).
-- Releasing a released hold returns it unchanged. Writes made at the end (flush).
USES = {[K_STOCK] = true, [K_CNT] = true, [K_DUE] = true}
local function release_one(id, now_iso)
  local h = hkey(id)
  local t, broken = load_checked(h)
  if broken then
    return {'corrupt', broken}
  end
  if not t.s then
    return {'unknown-hold'}
  end
  if t.s == 'released' then
    return {'same', view(t)}
  end
  if t.s ~= 'held' then
    return {'illegal-transition', t.s}
  end
  local bad = end_held(h, t, id, 'released', now_iso)
  if bad then
    return {'corrupt', bad}
  end
  return {'ok', view(t)}
end

local out = {}
for a = 2, #ARGV, 2 do
  out[#out + 1] = release_one(ARGV[a], ARGV[a + 1])
end
flush()
return out
