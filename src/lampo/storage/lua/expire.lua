-- expire due holds: KEYS[1] event base. ARGV: now (microseconds), now (ISO), limit.
-- Only held holds are on the deadline index, so no scan: the earliest deadlines first.
local out = {}
local due = redis.call('ZRANGEBYSCORE', K_DUE, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for i, id in ipairs(due) do
  local h = hkey(id)
  local t = load(h)
  end_held(h, t, id, 'expired', ARGV[2])
  out[i] = view(h)
end
return out
