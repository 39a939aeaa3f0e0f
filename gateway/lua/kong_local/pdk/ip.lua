-- kong.ip (kong/pdk/ip.lua): whether an address is in trusted_ips, read from KONG_TRUSTED_IPS
-- (Kong's default trusts none).
local function ipv4_to_int(ip)
  local a, b, c, d = ip:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  return ((tonumber(a) * 256 + tonumber(b)) * 256 + tonumber(c)) * 256 + tonumber(d)
end

-- IPv4 CIDRs become integer ranges; anything else is compared as written
local function parse_trusted(list)
  local ranges, trust_all = {}, false
  for item in list:gmatch("[^,%s]+") do
    if item == "0.0.0.0/0" or item == "::/0" or item == "unix:" then
      trust_all = true
    else
      local addr, bits = item:match("^([^/]+)/(%d+)$")
      addr = addr or item
      bits = tonumber(bits) or 32
      local n = ipv4_to_int(addr)
      if n then
        local size = 2 ^ (32 - bits)
        local base = math.floor(n / size) * size
        ranges[#ranges + 1] = { from = base, to = base + size - 1 }
      else
        ranges[#ranges + 1] = { exact = addr }
      end
    end
  end
  return ranges, trust_all
end

local function new()
  local trusted, trust_all = parse_trusted(os.getenv("KONG_TRUSTED_IPS") or "")
  return {
    is_trusted = function(address)
      if trust_all then return true end
      if type(address) ~= "string" then return false end
      local n = ipv4_to_int(address)
      for _, r in ipairs(trusted) do
        if r.exact and r.exact == address then return true end
        if n and r.from and n >= r.from and n <= r.to then return true end
      end
      return false
    end,
  }
end

return { new = new }
