-- Recompute the platform hash as the sum of every tenant hash, atomically.
-- KEYS[1] platform counts hash   ARGV[1] SCAN pattern matching every tenant hash
-- (tenant keys are found by SCAN inside the script: the set is only exact atomically.)

local sum = {}
local cursor = '0'
repeat
  local page = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = page[1]
  for _, key in ipairs(page[2]) do
    local counts = redis.call('HGETALL', key)
    for i = 1, #counts, 2 do
      sum[counts[i]] = (sum[counts[i]] or 0) + tonumber(counts[i + 1])
    end
  end
until cursor == '0'

redis.call('DEL', KEYS[1])
for field, n in pairs(sum) do
  if n ~= 0 then redis.call('HSET', KEYS[1], field, n) end
end
return 1
