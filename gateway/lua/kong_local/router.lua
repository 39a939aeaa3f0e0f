-- Route selection with Kong 3.9's `traditional_compatible` semantics (kong/router/transform.lua,
-- kong/router/atc.lua, kong/router/utils.lua) for the fields the local gateway supports:
-- paths (prefix and `~` regex), methods, hosts (exact and wildcard) and headers.
--
-- Each route is split into one candidate per path group (all regex paths together, prefix paths
-- grouped by length), as Kong does; candidates are ordered by Kong's 64-bit priority, written here
-- as a tuple compared field by field:
--   match weight (methods, hosts, headers, paths present), plain-hosts-only, header count,
--   has-regex, regex_priority (regex candidates only), prefix length.
-- Equal priorities keep declaration order.
local byte = string.byte
local sub = string.sub
local lower = string.lower
local find = string.find

local _M = {}

local SLASH = byte("/")
local TILDE = byte("~")

local function is_regex(path)
  return byte(path, 1) == TILDE
end
_M.is_regex = is_regex

local function empty(t)
  return t == nil or t == (ngx and ngx.null) or next(t) == nil
end

local function nkeys(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

local function hex_value(c)
  return tonumber(c, 16)
end

--- Kong's request path normalisation for routing (kong/tools/uri.lua normalize(path, true)):
-- percent-decodes unreserved characters, upper-cases other escapes, removes dot segments and
-- merges repeated slashes.
function _M.normalize(path)
  path = path:gsub("%%(%x%x)", function(hex)
    local c = string.char(hex_value(hex))
    if c:match("[A-Za-z0-9%-%._~]") then
      return c
    end
    return "%" .. hex:upper()
  end)
  path = path:gsub("//+", "/")
  if not find(path, ".", 1, true) then
    return path
  end
  local out = {}
  local trailing = sub(path, -1) == "/" or sub(path, -2) == "/." or sub(path, -3) == "/.."
  for seg in path:gmatch("[^/]+") do
    if seg == ".." then
      out[#out] = nil
    elseif seg ~= "." then
      out[#out + 1] = seg
    end
  end
  local res = "/" .. table.concat(out, "/")
  if trailing and res ~= "/" then
    res = res .. "/"
  end
  return res
end

--- Kong's get_upstream_uri_v0 (path_handling v0; traditional_compatible uses it for every route).
function _M.upstream_uri_v0(strip_path, request_postfix, req_uri, upstream_base)
  if byte(upstream_base, -1) == SLASH then
    if strip_path then
      if request_postfix == "" then
        if upstream_base == "/" then
          return "/"
        end
        if byte(req_uri, -1) == SLASH then
          return upstream_base
        end
        return sub(upstream_base, 1, -2)
      end
      if byte(request_postfix, 1) == SLASH then
        return sub(upstream_base, 1, -2) .. request_postfix
      end
      return upstream_base .. request_postfix
    end
    return upstream_base .. sub(req_uri, 2)
  end

  if strip_path then
    if request_postfix == "" then
      if #req_uri > 1 and byte(req_uri, -1) == SLASH then
        return upstream_base .. "/"
      end
      return upstream_base
    end
    if byte(request_postfix, 1) == SLASH then
      return upstream_base .. request_postfix
    end
    return upstream_base .. "/" .. request_postfix
  end

  if req_uri == "/" then
    return upstream_base
  end
  return upstream_base .. req_uri
end

--- Kong's sanitize_uri_postfix.
function _M.sanitize_postfix(postfix)
  if not postfix or postfix == "" then
    return postfix
  end
  if postfix == "." or postfix == ".." then
    return ""
  end
  if sub(postfix, 1, 2) == "./" then
    return sub(postfix, 3)
  end
  if sub(postfix, 1, 3) == "../" then
    return sub(postfix, 4)
  end
  return postfix
end

local function compare(a, b)
  local pa, pb = a.priority, b.priority
  for i = 1, #pa do
    if pa[i] ~= pb[i] then
      return pa[i] > pb[i]
    end
  end
  return a.order < b.order
end

local function priority(route, paths, regex)
  local weight = 0
  if not empty(route.methods) then weight = weight + 1 end
  if not empty(route.hosts) then weight = weight + 1 end
  local headers_count = empty(route.headers) and 0 or math.min(nkeys(route.headers), 255)
  if headers_count > 0 then weight = weight + 1 end
  local uri_length = 0
  if paths then
    weight = weight + 1
    if not regex then
      uri_length = #paths[1]
    end
  end
  local plain_host_only = 0
  if type(route.hosts) == "table" and not empty(route.hosts) then
    plain_host_only = 1
    for _, h in ipairs(route.hosts) do
      if find(h, "*", 1, true) then
        plain_host_only = 0
        break
      end
    end
  end
  return {
    weight,
    plain_host_only,
    headers_count,
    regex and 1 or 0,
    regex and (route.regex_priority or 0) or 0,
    uri_length,
  }
end

local function compile_hosts(hosts)
  if empty(hosts) then return nil end
  local out = {}
  for _, h in ipairs(hosts) do
    h = lower(h)
    local host, port = h:match("^(.-):(%d+)$")
    host = host or h
    local entry = { port = port and tonumber(port) or nil }
    if sub(host, 1, 2) == "*." then
      entry.suffix = sub(host, 2)
    elseif sub(host, -2) == ".*" then
      entry.prefix = sub(host, 1, -2)
    else
      entry.exact = host
    end
    out[#out + 1] = entry
  end
  return out
end

local function compile_headers(headers)
  if empty(headers) then return nil end
  local out = {}
  for name, values in pairs(headers) do
    local list = {}
    for _, v in ipairs(values) do
      if sub(v, 1, 2) == "~*" then
        list[#list + 1] = { regex = sub(v, 3) }
      else
        list[#list + 1] = { value = lower(v) }
      end
    end
    out[#out + 1] = { name = lower(name), values = list }
  end
  return out
end

local function http_route(route)
  if empty(route.protocols) then return true end
  for _, p in ipairs(route.protocols) do
    if p == "http" or p == "https" then return true end
  end
  return false
end

--- Builds a router. `routes` are normalised route entities, `services_by_id` maps ids to services.
-- `re_match(subject, regex)` returns a captures table or nil (defaults to ngx.re.match with "jo").
function _M.new(routes, services_by_id, re_match)
  re_match = re_match or function(subject, regex)
    local m, err = ngx.re.match(subject, regex, "jo")
    if err then
      error(err)
    end
    return m
  end
  local candidates = {}
  for order, route in ipairs(routes) do
    if http_route(route) then
      local service = route.service and route.service ~= (ngx and ngx.null) and services_by_id[route.service.id] or nil
      local methods
      if not empty(route.methods) then
        methods = {}
        for _, m in ipairs(route.methods) do methods[m] = true end
      end
      local base = {
        route = route,
        service = service,
        methods = methods,
        hosts = compile_hosts(route.hosts),
        headers = compile_headers(route.headers),
        order = order,
      }
      local groups = {}
      if empty(route.paths) then
        groups[1] = { paths = nil, regex = false }
      else
        local regex_group, by_len, lens = nil, {}, {}
        for _, p in ipairs(route.paths) do
          if is_regex(p) then
            regex_group = regex_group or { paths = {}, regex = true }
            regex_group.paths[#regex_group.paths + 1] = p
          else
            if not by_len[#p] then
              by_len[#p] = { paths = {}, regex = false }
              lens[#lens + 1] = #p
            end
            local g = by_len[#p]
            g.paths[#g.paths + 1] = p
          end
        end
        if regex_group then groups[#groups + 1] = regex_group end
        for _, len in ipairs(lens) do groups[#groups + 1] = by_len[len] end
      end
      for _, g in ipairs(groups) do
        local c = setmetatable({ paths = g.paths, regex = g.regex }, { __index = base })
        if g.regex then
          c.regexes = {}
          for i, p in ipairs(g.paths) do
            local rx = "^" .. sub(p, 2)
            -- compile now so that an invalid pattern refuses startup instead of failing requests
            local ok, err = pcall(re_match, "", rx)
            if not ok then
              error("invalid regex path '" .. p .. "' in route '" .. (route.name or route.id) .. "': " ..
                    tostring(err), 0)
            end
            c.regexes[i] = rx
          end
        end
        c.priority = priority(route, g.paths, g.regex)
        candidates[#candidates + 1] = c
      end
    end
  end
  table.sort(candidates, compare)
  return setmetatable({ candidates = candidates, re_match = re_match }, { __index = _M })
end

local function host_matches(hosts, host, port)
  for _, h in ipairs(hosts) do
    if not h.port or h.port == port then
      if h.exact then
        if host == h.exact then return true end
      elseif h.suffix then
        if #host > #h.suffix and sub(host, -#h.suffix) == h.suffix then return true end
      elseif h.prefix then
        if #host > #h.prefix and sub(host, 1, #h.prefix) == h.prefix then return true end
      end
    end
  end
  return false
end

local function header_matches(self, rules, headers)
  for _, rule in ipairs(rules) do
    local v = headers[rule.name]
    if v == nil then return false end
    local values = type(v) == "table" and v or { v }
    local ok = false
    for _, val in ipairs(values) do
      for _, want in ipairs(rule.values) do
        if want.value then
          if lower(val) == want.value then ok = true end
        elseif self.re_match(val, want.regex) then
          ok = true
        end
        if ok then break end
      end
      if ok then break end
    end
    if not ok then return false end
  end
  return true
end

--- Selects the route for a request.
-- req = { method, path (normalised, no query), host (lower-case, no port), port, headers (lower-case names) }
-- Returns nil or { route, service, matched_path, uri_captures, upstream_uri (without query) }.
function _M:select(req)
  local path = req.path
  for _, c in ipairs(self.candidates) do
    local ok = true
    if c.methods and not c.methods[req.method] then ok = false end
    if ok and c.hosts and not host_matches(c.hosts, req.host or "", req.port) then ok = false end
    if ok and c.headers and not header_matches(self, c.headers, req.headers or {}) then ok = false end
    local matched_path, captures
    if ok and c.paths then
      ok = false
      if c.regex then
        for _, rx in ipairs(c.regexes) do
          local m = self.re_match(path, rx)
          if m then
            matched_path, captures, ok = m[0], m, true
            break
          end
        end
      else
        for _, p in ipairs(c.paths) do
          if sub(path, 1, #p) == p then
            matched_path, ok = p, true
            break
          end
        end
      end
    end
    if ok then
      local route = c.route
      local upstream_uri
      if c.service then
        local postfix
        if route.strip_path and matched_path then
          postfix = sub(path, #matched_path + 1)
        else
          postfix = sub(path, 2)
        end
        postfix = _M.sanitize_postfix(postfix) or ""
        local base = c.service.path
        if base == nil or base == (ngx and ngx.null) then base = "/" end
        upstream_uri = _M.upstream_uri_v0(route.strip_path, postfix, path, base)
      end
      return {
        route = route,
        service = c.service,
        matched_path = matched_path,
        uri_captures = captures,
        upstream_uri = upstream_uri,
        prefix = (route.strip_path and matched_path) or nil,
      }
    end
  end
  return nil
end

return _M
