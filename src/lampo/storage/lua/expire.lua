-- expire due holds: KEYS[1] event base. ARGV: now (microseconds), now (ISO), limit.
-- Only held holds are on the deadline index, so no scan: the earliest deadlines first.
-- Returns the view of each hold expired; a due hold the store's state keeps from
-- expiring whole (_lib.lua, "Guards") is left as it is and answered {'corrupt', id,
-- problem} in its place. Writes made at the end (flush).
USES = {[K_STOCK] = true, [K_CNT] = true, [K_DUE] = true}
local out = {}
local due = redis.call('ZRANGEBYSCORE', K_DUE, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for i, id in ipairs(due) do
  local h = hkey(id)
  local t, bad = load_checked(h)
  if not bad and t.s ~= 'held' then
    bad = h .. ' is on the deadline index but not held'
  end
  bad = bad or end_held(h, t, id, 'expired', ARGV[2])
  out[i] = bad and {'corrupt', id, bad} or view(t)
end
flush()
return out
