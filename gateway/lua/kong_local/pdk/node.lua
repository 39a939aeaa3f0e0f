-- kong.node (kong/pdk/node.lua): the node's id (a v4 UUID made once per gateway start), its host
-- name, and the memory of the shared dicts and of this worker's Lua VM.
local state = require "kong_local.state"

local fmt = string.format

local UNIT_DIVISORS = { b = 1, k = 1024, m = 1024 * 1024, g = 1024 * 1024 * 1024 }

local function read_first_line(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local line = f:read("*l")
  f:close()
  return line
end

local function uuid_v4()
  local b = {}
  for i = 1, 16 do b[i] = math.random(0, 255) end
  b[7] = bit.bor(bit.band(b[7], 0x0f), 0x40)
  b[9] = bit.bor(bit.band(b[9], 0x3f), 0x80)
  return fmt("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", unpack(b))
end

local function get_memory_stats(unit, scale)
  unit = unit or "b"
  if type(unit) ~= "string" then error("invalid unit", 2) end
  local div = UNIT_DIVISORS[unit:lower()]
  if not div then
    error("invalid unit '" .. unit .. "' (expected 'k/K', 'm/M', or 'g/G')", 2)
  end
  scale = scale or 2
  local function conv(bytes)
    if unit:lower() == "b" then return bytes end
    return fmt("%." .. scale .. "f %s%s", bytes / div, unit:upper(), "iB")
  end
  local dicts = {}
  for name, dict in pairs(ngx.shared) do
    local capacity = dict:capacity()
    dicts[name] = {
      allocated_slabs = conv(capacity - dict:free_space()),
      capacity = conv(capacity),
    }
  end
  return {
    lua_shared_dicts = dicts,
    workers_lua_vms = {
      { http_allocated_gc = conv(collectgarbage("count") * 1024), pid = ngx.worker.pid() },
    },
  }
end

local function new()
  -- made in init (the master), so every worker reports the same id
  state.node_id = state.node_id or uuid_v4()
  state.hostname = state.hostname or read_first_line("/proc/sys/kernel/hostname")
                   or read_first_line("/etc/hostname") or "localhost"
  return {
    get_id = function()
      return state.node_id
    end,
    get_hostname = function()
      return state.hostname
    end,
    get_memory_stats = get_memory_stats,
  }
end

return { new = new }
