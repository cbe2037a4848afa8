-- Apply one entity event to the counts, atomically.
-- KEYS[1] seen key of the event id   KEYS[2] entity state hash
-- KEYS[3] tenant counts hash         KEYS[4] platform counts hash
-- KEYS[5] tenant generation          KEYS[6] tenant's pending generation (a rebuild runs)
-- KEYS[7] the pending rebuild's scratch counts hash
-- ARGV[1] dedupe TTL (s)   ARGV[2] entity version   ARGV[3] scratch TTL (s)
-- ARGV[4..] the entity's new fields
-- Returns {outcome, field1, tenant value1, field2, tenant value2, ...}; the outcome is
-- 'applied', 'duplicate' (the event id was seen) or 'stale' (the entity is newer already).
--
-- Generations: the tenant hash counts exactly the entity states whose `gen` is at least the
-- tenant's generation. A rebuild raises the generation when it swaps in counts recomputed
-- from Postgres, so a state the rebuild did not count (an entity deleted before the rebuild
-- read Postgres, whose deletion event is still on its way) stops counting, and its late
-- deletion subtracts nothing. While a rebuild runs, every applied event also moves the
-- rebuild's scratch counts, so the swap ends exact however many events flowed meanwhile.

if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return {'duplicate'}  -- this event id was applied already
end
local version = tonumber(ARGV[2])
local stored = redis.call('HGET', KEYS[2], 'version')
if stored and tonumber(stored) >= version then
  return {'stale'}  -- same or older version: the entity already reflects it or something newer
end

local gen = tonumber(redis.call('GET', KEYS[5]) or '0')
local pending = redis.call('GET', KEYS[6])
pending = pending and tonumber(pending)

local old = {}
local egen = 0
local raw = redis.call('HGETALL', KEYS[2])
for i = 1, #raw, 2 do
  if raw[i] == 'gen' then egen = tonumber(raw[i + 1])
  elseif raw[i] ~= 'version' then old[#old + 1] = raw[i] end
end

-- delta = new contribution - old contribution (the old one only if the hash counts it)
local delta = {}
if egen >= gen then
  for _, f in ipairs(old) do delta[f] = -1 end
end
local newgen = pending or gen
local state = {'version', ARGV[2], 'gen', newgen}
for i = 4, #ARGV do
  delta[ARGV[i]] = (delta[ARGV[i]] or 0) + 1
  state[#state + 1] = ARGV[i]
  state[#state + 1] = '1'
end

if pending then
  -- The scratch counts every state of the pending generation: replace this entity's.
  if egen == pending then
    for _, f in ipairs(old) do redis.call('HINCRBY', KEYS[7], f, -1) end
  end
  for i = 4, #ARGV do redis.call('HINCRBY', KEYS[7], ARGV[i], 1) end
  redis.call('EXPIRE', KEYS[7], ARGV[3])
end

redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], unpack(state))
if #ARGV < 4 then
  -- A tombstone keeps the version so a late older event cannot resurrect the entity; it
  -- needs to live only as long as event ids are remembered.
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end

local out = {'applied'}
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
