// The two Redis scripts of the redis policy: one round trip in access, one in settlement.
// Plain strings with no Lua-side imports, so the Node tests can run them against a real Redis.

/**
 * Check and reserve, atomically for all windows of a request.
 * KEYS: current and previous counter of each window, in pairs (previous is ignored when its
 * overlap is 0). ARGV[1]: the reservation (0: read only); then per window: limit, overlap of
 * the previous window (0 for fixed windows), ttl.
 * The rule is the plugin's: a window admits while floor(limit - used) > 0, with
 * used = current + previous * overlap. Reserves only when every window admits.
 * Returns { admitted (1/0), current_1, previous_1, current_2, previous_2, ... } with the values
 * before the reservation.
 */
export const ACQUIRE_SCRIPT = `
local reserve = tonumber(ARGV[1])
local n = #KEYS / 2
local out = { 1 }
for i = 1, n do
  local limit = tonumber(ARGV[3 * i - 1])
  local overlap = tonumber(ARGV[3 * i])
  local current = tonumber(redis.call("GET", KEYS[2 * i - 1]) or "0") or 0
  local previous = 0
  if overlap > 0 then
    previous = tonumber(redis.call("GET", KEYS[2 * i]) or "0") or 0
  end
  if math.floor(limit - (current + previous * overlap)) <= 0 then
    out[1] = 0
  end
  out[2 * i] = current
  out[2 * i + 1] = previous
end
if out[1] == 1 and reserve > 0 then
  for i = 1, n do
    local key = KEYS[2 * i - 1]
    redis.call("INCRBY", key, reserve)
    if redis.call("TTL", key) < 0 then
      redis.call("EXPIRE", key, tonumber(ARGV[3 * i + 1]))
    end
  end
end
return out
`;

/**
 * Settlement: KEYS are counters, ARGV per key: delta, ttl. A positive delta creates a missing
 * counter with its expiry; a negative one only corrects an existing counter (one that expired
 * meanwhile must not turn negative). Returns how many counters changed.
 */
export const SETTLE_SCRIPT = `
local changed = 0
for i = 1, #KEYS do
  local key = KEYS[i]
  local delta = tonumber(ARGV[2 * i - 1])
  if delta > 0 then
    redis.call("INCRBY", key, delta)
    if redis.call("TTL", key) < 0 then
      redis.call("EXPIRE", key, tonumber(ARGV[2 * i]))
    end
    changed = changed + 1
  elseif delta < 0 and redis.call("EXISTS", key) == 1 then
    redis.call("INCRBY", key, delta)
    changed = changed + 1
  end
end
return changed
`;
