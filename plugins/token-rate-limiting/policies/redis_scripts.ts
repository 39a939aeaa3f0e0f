// The redis policy's scripts: one round trip in access, one in settlement. Plain strings, so the
// Node tests can run them against a real Redis.

/**
 * Checks all windows of a request and reserves only when every one admits, atomically.
 * KEYS: current, previous per window. ARGV: reservation (0: read only), then limit, overlap, ttl
 * per window. Returns { admitted (1/0), current_1, previous_1, ... } as before the reservation.
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

/** ARGV per key: delta, ttl. A negative delta skips a counter that expired meanwhile, which must not turn negative. */
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
