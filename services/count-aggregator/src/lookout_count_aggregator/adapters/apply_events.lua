-- Apply a batch of entity events to the counts, in order, each one atomically (the whole
-- script is: Redis runs one script at a time).
-- KEYS[1] platform counts hash; then 6 keys per event, event i at base b = 1 + 6 * (i - 1):
--   KEYS[b+1] seen key of the event id   KEYS[b+2] entity state hash
--   KEYS[b+3] tenant counts hash         KEYS[b+4] tenant generation
--   KEYS[b+5] tenant's pending generation (a rebuild runs)
--   KEYS[b+6] the pending rebuild's scratch counts hash
-- ARGV[1] dedupe TTL (s)   ARGV[2] scratch TTL (s)
-- then per event: its entity version, the number n of its new fields, the n fields.
-- Returns one reply per event, in order: {outcome, field1, tenant value1, ...}; the outcome
-- is 'applied', 'duplicate' (the event id was seen) or 'stale' (the entity is newer already).
--
-- Generations: the tenant hash counts exactly the entity states whose `gen` is at least the
-- tenant's generation. A rebuild raises the generation when it swaps in counts recomputed
-- from Postgres, so a state the rebuild did not count (an entity deleted before the rebuild
-- read Postgres, whose deletion event is still on its way) stops counting, and its late
-- deletion subtracts nothing. While a rebuild runs, every applied event also moves the
-- rebuild's scratch counts, so the swap ends exact however many events flowed meanwhile.

local dedupe_ttl, scratch_ttl = ARGV[1], ARGV[2]
local platform = KEYS[1]

local function apply(k, version_arg, fields)
  if not redis.call('SET', k[1], '1', 'NX', 'EX', dedupe_ttl) then
    return {'duplicate'}  -- this event id was applied already
  end
  local version = tonumber(version_arg)
  local stored = redis.call('HGET', k[2], 'version')
  if stored and tonumber(stored) >= version then
    return {'stale'}  -- same or older version: the entity already reflects it or something newer
  end

  local gen = tonumber(redis.call('GET', k[4]) or '0')
  local pending = redis.call('GET', k[5])
  pending = pending and tonumber(pending)

  local old = {}
  local egen = 0
  local raw = redis.call('HGETALL', k[2])
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
  local state = {'version', version_arg, 'gen', newgen}
  for _, f in ipairs(fields) do
    delta[f] = (delta[f] or 0) + 1
    state[#state + 1] = f
    state[#state + 1] = '1'
  end

  if pending then
    -- The scratch counts every state of the pending generation: replace this entity's.
    if egen == pending then
      for _, f in ipairs(old) do redis.call('HINCRBY', k[6], f, -1) end
    end
    for _, f in ipairs(fields) do redis.call('HINCRBY', k[6], f, 1) end
    redis.call('EXPIRE', k[6], scratch_ttl)
  end

  redis.call('DEL', k[2])
  redis.call('HSET', k[2], unpack(state))
  if #fields == 0 then
    -- A tombstone keeps the version so a late older event cannot resurrect the entity; it
    -- needs to live only as long as event ids are remembered.
    redis.call('EXPIRE', k[2], dedupe_ttl)
  end

  local out = {'applied'}
  for field, d in pairs(delta) do
    if d ~= 0 then
      local t = redis.call('HINCRBY', k[3], field, d)
      local p = redis.call('HINCRBY', platform, field, d)
      -- Hashes hold only non-zero counts (a negative one would be drift: kept, so seen).
      if t == 0 then redis.call('HDEL', k[3], field) end
      if p == 0 then redis.call('HDEL', platform, field) end
      out[#out + 1] = field
      out[#out + 1] = t
    end
  end
  return out
end

local replies = {}
local a = 3
local b = 1
while a <= #ARGV do
  local version_arg, n = ARGV[a], tonumber(ARGV[a + 1])
  local fields = {}
  for i = 1, n do fields[i] = ARGV[a + 1 + i] end
  local k = {KEYS[b + 1], KEYS[b + 2], KEYS[b + 3], KEYS[b + 4], KEYS[b + 5], KEYS[b + 6]}
  replies[#replies + 1] = apply(k, version_arg, fields)
  a = a + 2 + n
  b = b + 6
end
return replies
