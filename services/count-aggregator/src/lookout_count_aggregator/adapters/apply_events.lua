-- Apply a batch of entity events to the counts, in order, each one atomically (the whole
-- script is: Redis runs one script at a time).
-- KEYS[1] platform counts hash;
-- then 4 keys per tenant of the batch, tenant t at base b = 1 + 4 * (t - 1):
--   KEYS[b+1] tenant counts hash   KEYS[b+2] tenant generation
--   KEYS[b+3] tenant's pending generation (a rebuild runs)
--   KEYS[b+4] the pending rebuild's scratch counts hash
-- then 2 keys per event, event i at base e = 1 + 4 * T + 2 * (i - 1):
--   KEYS[e+1] seen key of the event id   KEYS[e+2] entity state hash
-- ARGV[1] dedupe TTL (s)   ARGV[2] scratch TTL (s)   ARGV[3] T, the number of tenants
-- ARGV[4] JSON array, one [t, version, [field, ...]] per event: its tenant's number, its
-- entity version and the fields it leaves the entity with (one argument: cheap to send).
-- Returns {outcomes, changes}: outcomes holds one code per event, in order (0 duplicate:
-- the event id was seen; 1 stale: the entity is newer already; 2 applied, no count moved;
-- 3 applied, counts moved); changes[t] is {field1, value1, ...}, the tenant's new value of
-- every field the batch moved.
--
-- Generations: the tenant hash counts exactly the entity states whose `gen` is at least the
-- tenant's generation. A rebuild raises the generation when it swaps in counts recomputed
-- from Postgres, so a state the rebuild did not count (an entity deleted before the rebuild
-- read Postgres, whose deletion event is still on its way) stops counting, and its late
-- deletion subtracts nothing. While a rebuild runs, every applied event also moves the
-- rebuild's scratch counts, so the swap ends exact however many events flowed meanwhile.

local dedupe_ttl, scratch_ttl = ARGV[1], ARGV[2]
local platform = KEYS[1]
local tenants = tonumber(ARGV[3])
-- The count deltas of the batch, summed per tenant and field and written once at its end:
-- nothing runs between the script's steps, so only the sums are ever seen, and a batch of
-- one tenant's creations costs a few HINCRBY instead of two per field per event.
local deltas = {}
for t = 1, tenants do deltas[t] = {} end

-- A tenant's generation and pending generation, read once per batch: applying an event
-- changes neither, and nothing else runs while this script does.
local gens = {}
local function generations(t)
  local g = gens[t]
  if not g then
    local b = 1 + 4 * (t - 1)
    local pending = redis.call('GET', KEYS[b + 3])
    g = {tonumber(redis.call('GET', KEYS[b + 2]) or '0'), pending and tonumber(pending)}
    gens[t] = g
  end
  return g[1], g[2]
end

local function apply(seen, entity, t, version_arg, fields)
  if not redis.call('SET', seen, '1', 'NX', 'EX', dedupe_ttl) then
    return 0  -- duplicate: this event id was applied already
  end
  local version = tonumber(version_arg)
  local old = {}
  local egen, stored = 0, nil
  local raw = redis.call('HGETALL', entity)
  for i = 1, #raw, 2 do
    local field = raw[i]
    if field == 'gen' then egen = tonumber(raw[i + 1])
    elseif field == 'version' then stored = tonumber(raw[i + 1])
    else old[#old + 1] = field end
  end
  if stored and stored >= version then
    return 1  -- stale: same or older version; the entity reflects it or something newer
  end

  local b = 1 + 4 * (t - 1)
  local scratch = KEYS[b + 4]
  local gen, pending = generations(t)

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
      for _, f in ipairs(old) do redis.call('HINCRBY', scratch, f, -1) end
    end
    for _, f in ipairs(fields) do redis.call('HINCRBY', scratch, f, 1) end
    redis.call('EXPIRE', scratch, scratch_ttl)
  end

  if #raw > 0 then redis.call('DEL', entity) end  -- its old fields must not linger
  redis.call('HSET', entity, unpack(state))
  if #fields == 0 then
    -- A tombstone keeps the version so a late older event cannot resurrect the entity; it
    -- needs to live only as long as event ids are remembered.
    redis.call('EXPIRE', entity, dedupe_ttl)
  end

  local sums = deltas[t]
  local code = 2
  for field, d in pairs(delta) do
    if d ~= 0 then
      sums[field] = (sums[field] or 0) + d
      code = 3
    end
  end
  return code
end

local outcomes = {}
local e = 1 + 4 * tenants
for i, event in ipairs(cjson.decode(ARGV[4])) do
  outcomes[i] = apply(KEYS[e + 1], KEYS[e + 2], event[1], tostring(event[2]), event[3])
  e = e + 2
end
-- changes[t]: the tenant's new value of every field an event of the batch moved (a field
-- whose moves summed to zero is read, not written).
local changes = {}
for t = 1, tenants do
  local tenant, flat = KEYS[1 + 4 * (t - 1) + 1], {}
  for field, d in pairs(deltas[t]) do
    local n
    if d ~= 0 then
      n = redis.call('HINCRBY', tenant, field, d)
      -- Hashes hold only non-zero counts (a negative one would be drift: kept, so seen).
      if n == 0 then redis.call('HDEL', tenant, field) end
      if redis.call('HINCRBY', platform, field, d) == 0 then redis.call('HDEL', platform, field) end
    else
      n = tonumber(redis.call('HGET', tenant, field) or '0')
    end
    flat[#flat + 1] = field
    flat[#flat + 1] = n
  end
  changes[t] = flat
end
return {outcomes, changes}
