-- Host name resolution for the balancer: IP literals as they are, then /etc/hosts, then the
-- system resolver (getaddrinfo, blocking but cached per worker). IPv4 is preferred, as Kong's
-- default dns_order (LAST, SRV, A, CNAME) does.
local ffi = require "ffi"

local _M = {}

local cache = {}
local CACHE_TTL = 30

local function is_ipv4(s)
  return s:match("^%d+%.%d+%.%d+%.%d+$") ~= nil
end

local function is_ipv6(s)
  return s:find(":", 1, true) ~= nil and s:match("^[%x:%.]+$") ~= nil
end

local hosts_v4, hosts_v6
-- ports that KONG_LOCAL_HOSTS moves a name to: locally, two compose services may want the same
-- port (vllm:8000 and Kong's own proxy port), which separate containers never have to share
local port_overrides = {}
local function load_hosts()
  hosts_v4, hosts_v6 = {}, {}
  -- KONG_LOCAL_HOSTS="mock-llm=127.0.0.1,vllm=127.0.0.1:18000": the docker-compose service names
  -- of kong/kong.yml pointed at local processes (tools/dev.ts sets it)
  for name, target in (os.getenv("KONG_LOCAL_HOSTS") or ""):gmatch("([^,=%s]+)=([^,%s]+)") do
    name = name:lower()
    local ip, port = target:match("^(%d+%.%d+%.%d+%.%d+):(%d+)$")
    ip = ip or target
    if port then
      port_overrides[name] = tonumber(port)
    end
    local hosts = is_ipv4(ip) and hosts_v4 or hosts_v6
    hosts[name] = ip
  end
  local f = io.open("/etc/hosts", "r")
  if not f then
    return
  end
  for line in f:lines() do
    line = line:gsub("#.*$", "")
    local ip, names = line:match("^%s*(%S+)%s+(.+)$")
    if ip then
      local target = is_ipv4(ip) and hosts_v4 or (is_ipv6(ip) and hosts_v6 or nil)
      if target then
        for name in names:gmatch("%S+") do
          name = name:lower()
          if not target[name] then target[name] = ip end
        end
      end
    end
  end
  f:close()
end

ffi.cdef [[
  struct kl_addrinfo {
    int ai_flags;
    int ai_family;
    int ai_socktype;
    int ai_protocol;
    unsigned int ai_addrlen;
    void *ai_addr;
    char *ai_canonname;
    struct kl_addrinfo *ai_next;
  };
  int getaddrinfo(const char *node, const char *service, const struct kl_addrinfo *hints,
                  struct kl_addrinfo **res);
  void freeaddrinfo(struct kl_addrinfo *res);
  const char *gai_strerror(int errcode);
  const char *inet_ntop(int af, const void *src, char *dst, unsigned int size);
]]

local AF_INET, AF_INET6, SOCK_STREAM = 2, 10, 1

local function getaddrinfo(host)
  local hints = ffi.new("struct kl_addrinfo")
  hints.ai_socktype = SOCK_STREAM
  local res = ffi.new("struct kl_addrinfo *[1]")
  local rc = ffi.C.getaddrinfo(host, nil, hints, res)
  if rc ~= 0 then
    return nil, ffi.string(ffi.C.gai_strerror(rc))
  end
  local v4, v6
  local buf = ffi.new("char[64]")
  local ai = res[0]
  while ai ~= nil do
    if ai.ai_family == AF_INET and not v4 then
      -- sockaddr_in: family(2) port(2) addr(4)
      local addr = ffi.cast("const unsigned char *", ai.ai_addr) + 4
      v4 = ffi.string(ffi.C.inet_ntop(AF_INET, addr, buf, 64))
    elseif ai.ai_family == AF_INET6 and not v6 then
      -- sockaddr_in6: family(2) port(2) flowinfo(4) addr(16)
      local addr = ffi.cast("const unsigned char *", ai.ai_addr) + 8
      v6 = ffi.string(ffi.C.inet_ntop(AF_INET6, addr, buf, 64))
    end
    ai = ai.ai_next
  end
  ffi.C.freeaddrinfo(res[0])
  return v4 or v6, (v4 or v6) and nil or "no address"
end

--- Kong resolves host names given to ngx.socket.tcp():connect() and ngx.socket.udp():setpeername()
-- with its own DNS client (kong/globalpatches.lua), so plugins can connect to "redis" without an
-- nginx `resolver`; the same here, with this module.
function _M.patch_sockets()
  local function resolve(host)
    if type(host) ~= "string" or host:sub(1, 5) == "unix:" then
      return host
    end
    local ip, err, port = _M.resolve(host)
    if not ip then
      return nil, "[cosocket] DNS resolution failed: " .. tostring(err) .. ". Tried: " .. host
    end
    return ip, nil, port
  end
  local old_tcp = ngx.socket.tcp
  ngx.socket.tcp = function(...)
    local sock = old_tcp(...)
    local old_connect = sock.connect
    sock.connect = function(s, host, port, opts)
      local ip, err, moved_port = resolve(host)
      if not ip then return nil, err end
      return old_connect(s, ip, moved_port or port, opts)
    end
    return sock
  end
  local old_udp = ngx.socket.udp
  ngx.socket.udp = function(...)
    local sock = old_udp(...)
    local old_setpeername = sock.setpeername
    sock.setpeername = function(s, host, port)
      local ip, err = resolve(host)
      if not ip then return nil, err end
      return old_setpeername(s, ip, port)
    end
    return sock
  end
end

--- The IP address for `host`, or nil and an error; third, the port KONG_LOCAL_HOSTS moved it to.
function _M.resolve(host)
  if type(host) ~= "string" or host == "" then
    return nil, "invalid host"
  end
  local bare = host:match("^%[(.*)%]$") or host
  if is_ipv4(bare) or is_ipv6(bare) then
    return bare
  end
  local name = bare:lower()
  local now = ngx.now()
  local hit = cache[name]
  if hit and hit.expires > now then
    return hit.ip, nil, port_overrides[name]
  end
  if not hosts_v4 then
    load_hosts()
  end
  local ip = hosts_v4[name] or (name == "localhost" and "127.0.0.1") or hosts_v6[name]
  local err
  if not ip then
    ip, err = getaddrinfo(name)
  end
  if not ip then
    return nil, "dns server error: " .. tostring(err) .. " (" .. host .. ")"
  end
  cache[name] = { ip = ip, expires = now + CACHE_TTL }
  return ip, nil, port_overrides[name]
end

return _M
