-- a page of the event's holds: KEYS[1] event base. ARGV: SSCAN cursor, page size.
-- Returns {next cursor ('0' at the end), view of each hold...}; a hold may come twice
-- (SSCAN's guarantee), the caller keeps one.
local page = redis.call('SSCAN', K_IDS, ARGV[1], 'COUNT', ARGV[2])
local out = {page[1]}
for i, id in ipairs(page[2]) do
  out[i + 1] = view(hkey(id))
end
return out
