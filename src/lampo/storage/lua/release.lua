-- release a batch: KEYS[1] event base. ARGV: count, then per request: hold id, now (ISO).
-- Releasing a released hold returns it unchanged.
local function release_one(id, now_iso)
  local h = hkey(id)
  local t, flat = load(h)
  if not t.state then
    return {'unknown-hold'}
  end
  if t.state == 'released' then
    return {'same', flat}
  end
  if t.state ~= 'held' then
    return {'illegal-transition', t.state}
  end
  end_held(h, t, id, 'released', now_iso)
  return {'ok', redis.call('HGETALL', h)}
end

local out = {}
for r = 0, tonumber(ARGV[1]) - 1 do
  out[r + 1] = release_one(ARGV[2 + 2 * r], ARGV[3 + 2 * r])
end
return out
