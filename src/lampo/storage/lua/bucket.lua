-- one bucket's stock, read at once: KEYS[1] bucket base.
-- Returns {stock hash (flat), transfers lent and not settled (flat), transfer version}.
return {redis.call('HGETALL', K_STOCK), redis.call('HGETALL', K_XFER),
  redis.call('GET', K_XV) or '0'}
