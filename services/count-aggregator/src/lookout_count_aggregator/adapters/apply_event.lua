-- Apply one entity event to the counts, atomically.
-- KEYS[1] seen key of the event id   KEYS[2] entity state hash
-- KEYS[3] tenant counts hash         KEYS[4] platform counts hash
-- ARGV[1] dedupe TTL (s)   ARGV[2] entity version   ARGV[3..] the entity's new fields
-- Returns {applied (0|1), field1, tenant value1, field2, tenant value2, ...}.

if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return {0}  -- this event id was applied already
end
local version = tonumber(ARGV[2])
local stored = redis.call('HGET', KEYS[2], 'version')
if stored and tonumber(stored) >= version then
  return {0}  -- stale or same version: the entity already reflects it or something newer
end

-- delta = new contribution - old contribution
local delta = {}
local old = redis.call('HGETALL', KEYS[2])
for i = 1, #old, 2 do
  if old[i] ~= 'version' then delta[old[i]] = -1 end
end
local state = {'version', ARGV[2]}
for i = 3, #ARGV do
  delta[ARGV[i]] = (delta[ARGV[i]] or 0) + 1
  state[#state + 1] = ARGV[i]
  state[#state + 1] = '1'
end

redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], unpack(state))
if #ARGV < 3 then
  -- A tombstone keeps the version so a late older event cannot resurrect the entity; it
  -- needs to live only as long as event ids are remembered.
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end

local out = {1}
for field, d in pairs(delta) do
  if d ~= 0 then
    local t = redis.call('HINCRBY', KEYS[3], field, d)
    local p = redis.call('HINCRBY', KEYS[4], field, d)
    -- Hashes hold only non-zero counts (a negative one would be drift: kept, so seen).
    if t == 0 then redis.call('HDEL', KEYS[3], field) end
    if p == 0 then redis.call('HDEL', KEYS[4], field) end
    out[#out + 1] = field
    out[#out + 1] = t
  end
end
return out
