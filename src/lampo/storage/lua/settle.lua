-- transfer step 3, in the lending bucket: KEYS[1] lender base. ARGV: transfer ids.
-- Clears the records of transfers the borrower has applied (idempotent). Checked before
-- its first write (_lib.lua, "Guards"): a store in the way is a CORRUPT error.
USES = {[K_XFER] = true, [K_XV] = true}
local broken = broken_keys()
local p = plan()
broken = broken or incr_key(p, K_XV)
if broken then
  return redis.error_reply('CORRUPT ' .. broken)
end
local n = redis.call('HDEL', K_XFER, unpack(ARGV))
if n > 0 then
  apply(p)
end
return n
