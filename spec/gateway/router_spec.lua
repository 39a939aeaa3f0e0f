-- kong_local.router without nginx: Kong's traditional_compatible ordering and upstream URIs.
local router = require "kong_local.router"

-- Regex matching is nginx's PCRE in the gateway (covered by spec/gateway/proxy.test.ts); here a
-- stand-in translating the few regexes below (anchored, \d only) to Lua patterns.
local function re_match(subject, regex)
  local pattern = regex:gsub("\\d", "%%d")
  local captures = { subject:match(pattern) }
  if captures[1] == nil then return nil end
  if not pattern:find("(", 1, true) then captures = {} end
  captures[0] = subject:match((pattern:gsub("[()]", "")))
  return captures
end

local function svc(path) return { id = "s", host = "h", port = 80, protocol = "http", path = path } end

local function build(routes, service_path)
  local services = { s = svc(service_path) }
  for _, r in ipairs(routes) do
    r.service = r.service or { id = "s" }
    if r.strip_path == nil then r.strip_path = true end
  end
  return router.new(routes, services, re_match)
end

local function select(rt, req)
  req.method = req.method or "GET"
  req.headers = req.headers or {}
  return rt:select(req)
end

describe("router", function()
  it("prefers the longest prefix whatever the declaration order", function()
    local rt = build({ { name = "short", paths = { "/a" } }, { name = "long", paths = { "/a/b" } } })
    assert.equal("long", select(rt, { path = "/a/b/c" }).route.name)
    assert.equal("short", select(rt, { path = "/a/c" }).route.name)
  end)

  it("treats prefixes as plain string prefixes", function()
    local rt = build({ { name = "h", paths = { "/h" } } })
    assert.equal("h", select(rt, { path = "/hd" }).route.name)
  end)

  it("orders regex paths before prefixes, then by regex_priority", function()
    local rt = build({
      { name = "prefix", paths = { "/items/1234" } },
      { name = "low", paths = { "~/items/\\d+$" }, regex_priority = 1 },
      { name = "high", paths = { "~/items/(\\d+)$" }, regex_priority = 2 },
    })
    local m = select(rt, { path = "/items/1234" })
    assert.equal("high", m.route.name)
    assert.equal("1234", m.uri_captures[1])
  end)

  it("counts matching fields: method+path beats path", function()
    local rt = build({ { name = "path", paths = { "/m" } }, { name = "post", paths = { "/m" }, methods = { "POST" } } })
    assert.equal("post", select(rt, { path = "/m", method = "POST" }).route.name)
    assert.equal("path", select(rt, { path = "/m", method = "GET" }).route.name)
  end)

  it("prefers plain hosts to wildcard hosts", function()
    local rt = build({
      { name = "wild", hosts = { "*.example.test" } },
      { name = "plain", hosts = { "api.example.test" } },
      { name = "suffix", hosts = { "api.*" } },
    })
    assert.equal("plain", select(rt, { path = "/", host = "api.example.test" }).route.name)
    assert.equal("wild", select(rt, { path = "/", host = "www.example.test" }).route.name)
    assert.equal("suffix", select(rt, { path = "/", host = "api.other" }).route.name)
    assert.is_nil(select(rt, { path = "/", host = "example.test" }))
  end)

  it("matches a host with a port only on that port", function()
    local rt = build({ { name = "p", hosts = { "h.test:8000" } } })
    assert.equal("p", select(rt, { path = "/", host = "h.test", port = 8000 }).route.name)
    assert.is_nil(select(rt, { path = "/", host = "h.test", port = 8001 }))
  end)

  it("matches header values case-insensitively, more headers first", function()
    local rt = build({
      { name = "one", paths = { "/" }, headers = { ["x-a"] = { "v" } } },
      { name = "two", paths = { "/" }, headers = { ["x-a"] = { "v" }, ["x-b"] = { "w" } } },
    })
    assert.equal("two", select(rt, { path = "/", headers = { ["x-a"] = "V", ["x-b"] = "w" } }).route.name)
    assert.equal("one", select(rt, { path = "/", headers = { ["x-a"] = "v" } }).route.name)
    assert.is_nil(select(rt, { path = "/", headers = { ["x-a"] = "nope" } }))
  end)

  it("splits a route's paths into groups as Kong does", function()
    local rt = build({ { name = "multi", paths = { "/aaaa", "/b" } }, { name = "mid", paths = { "/bb" } } })
    assert.equal("multi", select(rt, { path = "/aaaa/x" }).route.name)
    assert.equal("mid", select(rt, { path = "/bb" }).route.name)
    assert.equal("multi", select(rt, { path = "/b" }).route.name)
  end)

  it("ignores routes that are not http", function()
    local rt = build({ { name = "tcp", paths = { "/" }, protocols = { "tcp" } } })
    assert.is_nil(select(rt, { path = "/" }))
  end)
end)

describe("upstream uri (get_upstream_uri_v0)", function()
  -- Kong's documented path_handling v0 table
  local cases = {
    -- service path, route path, request, strip_path, upstream
    { "/s", "/fv0", "/fv0/req", false, "/s/fv0/req" },
    { "/s", "/fv0", "/fv0", false, "/s/fv0" },
    { "/s", "/tv0", "/tv0/req", true, "/s/req" },
    { "/s", "/tv0", "/tv0", true, "/s" },
    { "/s", "/fv0/", "/fv0/req", false, "/s/fv0/req" },
    { "/s", "/tv0/", "/tv0/req", true, "/s/req" },
    { "/s", "/tv0/", "/tv0/", true, "/s/" },
    { "/s/", "/tv0", "/tv0/req", true, "/s/req" },
    { "/s/", "/tv0", "/tv0", true, "/s" },
    { "/s/", "/f", "/f/req", false, "/s/f/req" },
    { nil, "/api", "/api/x", true, "/x" },
    { nil, "/api", "/api", true, "/" },
    { nil, "/api", "/api/x", false, "/api/x" },
  }
  for _, c in ipairs(cases) do
    it(string.format("service %s, route %s, %s, strip_path %s -> %s", tostring(c[1]), c[2], c[3], tostring(c[4]), c[5]),
      function()
        local rt = build({ { name = "r", paths = { c[2] }, strip_path = c[4] } }, c[1])
        assert.equal(c[5], select(rt, { path = c[3] }).upstream_uri)
      end)
  end
end)

describe("normalize", function()
  it("decodes unreserved escapes, removes dot segments and merges slashes", function()
    assert.equal("/a/b", router.normalize("/a/./b"))
    assert.equal("/b", router.normalize("/a/../b"))
    assert.equal("/a/b/", router.normalize("//a//b/"))
    assert.equal("/abc", router.normalize("/%61bc"))
    assert.equal("/a%2Fb", router.normalize("/a%2fb"))
  end)
end)
