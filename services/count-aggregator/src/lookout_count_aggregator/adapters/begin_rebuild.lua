-- Open a rebuild of one tenant: a pending generation above every generation in use (a
-- crashed rebuild's included) and an empty scratch hash, atomically.
-- KEYS[1] tenant generation   KEYS[2] pending generation   KEYS[3] scratch counts hash
-- Returns the pending generation.

local gen = tonumber(redis.call('GET', KEYS[1]) or '0')
local stale = tonumber(redis.call('GET', KEYS[2]) or '0')
local pending = math.max(gen, stale) + 1
redis.call('SET', KEYS[2], pending)
redis.call('DEL', KEYS[3])
return pending
