-- What reserve would answer from idempotency records alone, writing nothing (a read):
-- KEYS[1] the event base (of the customers' stock bucket); ARGV: the event (unused),
-- then two arguments per request: key, fingerprint. Per request: replay's answer (see
-- _lib.lua), or {'none'} when the key has no record.
local out = {}
for a = 2, #ARGV, 2 do
  out[#out + 1] = replay(ARGV[a], ARGV[a + 1]) or {'none'}
end
return out
