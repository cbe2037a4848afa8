-- Swap a tenant's rebuilt counts in, atomically: the scratch counts become the tenant hash
-- and the pending generation becomes the tenant's generation (see apply_events.lua).
-- KEYS[1] tenant counts hash   KEYS[2] platform counts hash   KEYS[3] tenant generation
-- KEYS[4] pending generation   KEYS[5] scratch counts hash
-- ARGV[1] this rebuild's pending generation
-- Returns 1.

if redis.call('GET', KEYS[4]) ~= ARGV[1] then
  return redis.error_reply('superseded: the pending generation of this tenant changed')
end

-- The platform hash moves by (new tenant counts - old tenant counts).
local delta = {}
local old = redis.call('HGETALL', KEYS[1])
for i = 1, #old, 2 do delta[old[i]] = -tonumber(old[i + 1]) end
local new = redis.call('HGETALL', KEYS[5])
for i = 1, #new, 2 do
  local n = tonumber(new[i + 1])
  delta[new[i]] = (delta[new[i]] or 0) + n
  if n == 0 then redis.call('HDEL', KEYS[5], new[i]) end
end
for field, d in pairs(delta) do
  if d ~= 0 and redis.call('HINCRBY', KEYS[2], field, d) == 0 then
    redis.call('HDEL', KEYS[2], field)
  end
end

if redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('PERSIST', KEYS[5])
  redis.call('RENAME', KEYS[5], KEYS[1])
else
  redis.call('DEL', KEYS[1])
end
redis.call('SET', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[4])
return 1
