-- the live totals: KEYS[1] event base. One snapshot of the four hashes:
-- {units by line key, amount by line key, orders by order key, amount by order key}.
return {redis.call('HGETALL', K_LU), redis.call('HGETALL', K_LA), redis.call('HGETALL', K_OU),
  redis.call('HGETALL', K_OA)}
