-- Write one chunk of a tenant's entity states, as read from Postgres, into the pending
-- generation of a rebuild (see apply_events.lua for generations), atomically.
-- KEYS[1] tenant counts hash   KEYS[2] platform counts hash   KEYS[3] tenant generation
-- KEYS[4] pending generation   KEYS[5] scratch counts hash
-- KEYS[6..] entity state hashes, aligned with the states in ARGV[3]
-- ARGV[1] this rebuild's pending generation   ARGV[2] scratch TTL (s)
-- ARGV[3] JSON array [[version, [field, ...]], ...]
-- Returns the number of entities whose Redis state was newer than Postgres's.
--
-- The live hash stays exact for the states it counts (a state the chunk replaces moves it
-- by the difference); the scratch gains every state of the pending generation.

local pending = redis.call('GET', KEYS[4])
if pending ~= ARGV[1] then
  return redis.error_reply('superseded: the pending generation of this tenant changed')
end
pending = tonumber(pending)
local gen = tonumber(redis.call('GET', KEYS[3]) or '0')
local live, scratch = {}, {}
local function add(counts, fields, d)
  for _, f in ipairs(fields) do counts[f] = (counts[f] or 0) + d end
end

local newer = 0
for i, snap in ipairs(cjson.decode(ARGV[3])) do
  local key = KEYS[i + 5]
  local version, fields = snap[1], snap[2]
  local stored, egen, current = nil, 0, {}
  local raw = redis.call('HGETALL', key)
  for j = 1, #raw, 2 do
    if raw[j] == 'version' then stored = tonumber(raw[j + 1])
    elseif raw[j] == 'gen' then egen = tonumber(raw[j + 1])
    else current[#current + 1] = raw[j] end
  end
  if stored and stored > version then
    -- An event newer than Postgres's row was applied: keep its state, counted.
    newer = newer + 1
    if egen ~= pending then
      add(scratch, current, 1)
      if egen < gen then add(live, current, 1) end
      redis.call('HSET', key, 'gen', pending)
    end
  else
    add(scratch, fields, 1)
    add(live, fields, 1)
    if egen == pending then add(scratch, current, -1) end
    if egen >= gen then add(live, current, -1) end
    local hash = {'version', version, 'gen', pending}
    for _, f in ipairs(fields) do
      hash[#hash + 1] = f
      hash[#hash + 1] = '1'
    end
    redis.call('DEL', key)
    redis.call('HSET', key, unpack(hash))
  end
end

for f, d in pairs(scratch) do
  if d ~= 0 then redis.call('HINCRBY', KEYS[5], f, d) end
end
redis.call('EXPIRE', KEYS[5], ARGV[2])
for f, d in pairs(live) do
  if d ~= 0 then
    if redis.call('HINCRBY', KEYS[1], f, d) == 0 then redis.call('HDEL', KEYS[1], f) end
    if redis.call('HINCRBY', KEYS[2], f, d) == 0 then redis.call('HDEL', KEYS[2], f) end
  end
end
return newer
