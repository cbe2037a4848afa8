-- Swap in a tenant's rebuilt counts, atomically, while events keep flowing.
-- KEYS[1] scratch hash holding the counts computed from the SQL snapshot (may be absent)
-- KEYS[2] tenant counts hash   KEYS[3] platform counts hash
-- KEYS[4..] entity state hashes of the tenant's entities in the SQL snapshot
-- ARGV[1] JSON array aligned with KEYS[4..]: [[version, [field, ...]], ...]
-- Returns the number of entities whose Redis state was newer than the snapshot.

local states = cjson.decode(ARGV[1])
local newer = 0
for i, state in ipairs(states) do
  local key = KEYS[i + 3]
  local version, fields = state[1], state[2]
  local stored = redis.call('HGET', key, 'version')
  if stored and tonumber(stored) > version then
    -- An event newer than the snapshot was applied already: count its state instead.
    newer = newer + 1
    for _, f in ipairs(fields) do redis.call('HINCRBY', KEYS[1], f, -1) end
    local current = redis.call('HGETALL', key)
    for j = 1, #current, 2 do
      if current[j] ~= 'version' then redis.call('HINCRBY', KEYS[1], current[j], 1) end
    end
  else
    local hash = {'version', version}
    for _, f in ipairs(fields) do
      hash[#hash + 1] = f
      hash[#hash + 1] = '1'
    end
    redis.call('DEL', key)
    redis.call('HSET', key, unpack(hash))
  end
end

-- The platform hash moves by (new tenant counts - old tenant counts).
local delta = {}
local old = redis.call('HGETALL', KEYS[2])
for i = 1, #old, 2 do delta[old[i]] = -tonumber(old[i + 1]) end
local new = redis.call('HGETALL', KEYS[1])
for i = 1, #new, 2 do
  local n = tonumber(new[i + 1])
  delta[new[i]] = (delta[new[i]] or 0) + n
  if n == 0 then redis.call('HDEL', KEYS[1], new[i]) end
end
for field, d in pairs(delta) do
  if d ~= 0 and redis.call('HINCRBY', KEYS[3], field, d) == 0 then
    redis.call('HDEL', KEYS[3], field)
  end
end

if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PERSIST', KEYS[1])
  redis.call('RENAME', KEYS[1], KEYS[2])
else
  redis.call('DEL', KEYS[2])
end
return newer
