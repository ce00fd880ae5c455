-- transfer step 3, in the lending bucket: KEYS[1] lender base. ARGV: transfer ids.
-- Clears the records of transfers the borrower has applied (idempotent).
local n = redis.call('HDEL', K_XFER, unpack(ARGV))
if n > 0 then
  redis.call('INCR', K_XV)
end
return n
