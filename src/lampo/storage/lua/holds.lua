-- a page of the event's holds: KEYS[1] event base. ARGV: HSCAN cursor, page size.
-- Every hold has one idempotency record, which names it: the records are the index of
-- the event's holds. Returns {next cursor ('0' at the end), view of each hold...}; a
-- hold may come twice (HSCAN's guarantee), the caller keeps one.
local page = redis.call('HSCAN', K_IDEM, ARGV[1], 'COUNT', ARGV[2])
local out = {page[1]}
local flat = page[2]
for i = 2, #flat, 2 do
  local cut = string.find(flat[i], SEP, 1, true)
  if cut then
    out[#out + 1] = stored_view(hkey(string.sub(flat[i], cut + 1)))
  end
end
return out
