-- kong.db.schema.typedefs for the local gateway: Kong 3.9's definitions with
-- their validators working.
local typedefs = require "kong.db.schema.typedefs"
local core = require "kong_local.schema.core"

local null = core.null


local function ok(field, value)
  local res, err = core.validate_field(field, value)
  assert(res == true, "expected '" .. tostring(value) .. "' to pass, got: " .. tostring(err))
end

local function fails(field, value, message)
  local res, err = core.validate_field(field, value)
  assert.is_nil(res, "expected '" .. tostring(value) .. "' to fail")
  if message then
    assert.same(message, err)
  end
end


describe("typedefs", function()
  it("an unknown typedef is an error, as in Kong", function()
    assert.has_error(function() return typedefs.nope end,
                     "schema typedef error: definition nope does not exist")
  end)

  it("can be called with overrides, leaving the typedef itself unchanged", function()
    local port = typedefs.port { default = 6379, required = true }
    assert.equal(6379, port.default)
    assert.is_true(port.required)
    assert.same({ 0, 65535 }, port.between)
    assert.is_nil(typedefs.port.default)
  end)

  describe("host / redis_host", function()
    for _, v in ipairs({ "example.com", "localhost", "redis", "a-b.c", "127.0.0.1", "::1",
                         "2001:db8::1", "[2001:db8::1]", "example.com." }) do
      it("accepts " .. v, function()
        ok(typedefs.host, v)
        ok(typedefs.redis_host, v)
      end)
    end

    it("refuses a port", function()
      fails(typedefs.host, "example.com:80", "must not have a port")
      fails(typedefs.host, "127.0.0.1:6379", "must not have a port")
      fails(typedefs.host, "[::1]:6379", "must not have a port")
      fails(typedefs.host, "example.com:99999", "must not have a port")
    end)

    it("refuses what is not a host name", function()
      fails(typedefs.host, "exa mple.com", "invalid value: exa mple.com")
      fails(typedefs.host, "http://example.com", "invalid value: http://example.com")
      fails(typedefs.host, "bad-.com", "invalid value: bad-.com")
      fails(typedefs.host, ".example.com", "invalid value: .example.com")
      fails(typedefs.host, "a..b", "invalid value: a..b")
      fails(typedefs.host, "256.1.1.1", "invalid value: 256.1.1.1")
      fails(typedefs.host, "", "length must be at least 1")
    end)
  end)

  describe("host_with_optional_port", function()
    it("takes a host with or without a port", function()
      ok(typedefs.host_with_optional_port, "example.com")
      ok(typedefs.host_with_optional_port, "example.com:8080")
      ok(typedefs.host_with_optional_port, "[::1]:80")
      fails(typedefs.host_with_optional_port, "example.com:70000", "invalid port number")
    end)
  end)

  describe("ip, ip_or_cidr, cidr_v4", function()
    it("ip", function()
      ok(typedefs.ip, "10.0.0.1")
      ok(typedefs.ip, "fe80::1")
      fails(typedefs.ip, "10.0.0.256", "not an ip address: 10.0.0.256")
      fails(typedefs.ip, "example.com", "not an ip address: example.com")
      fails(typedefs.ip, "10.0.0.1/8", "not an ip address: 10.0.0.1/8")
    end)

    it("ip_or_cidr", function()
      ok(typedefs.ip_or_cidr, "10.0.0.1")
      ok(typedefs.ip_or_cidr, "10.0.0.0/8")
      ok(typedefs.ip_or_cidr, "2001:db8::/32")
      fails(typedefs.ip_or_cidr, "10.0.0.0/33", "invalid ip or cidr range: '10.0.0.0/33'")
      fails(typedefs.ip_or_cidr, "2001:db8::/129", "invalid ip or cidr range: '2001:db8::/129'")
      fails(typedefs.ip_or_cidr, "10.0.0.0/08", "invalid ip or cidr range: '10.0.0.0/08'")
    end)

    it("cidr_v4 (and its alias cidr)", function()
      ok(typedefs.cidr_v4, "192.168.0.0/16")
      ok(typedefs.cidr, "192.168.0.1")
      fails(typedefs.cidr_v4, "2001:db8::/32", "invalid ipv4 cidr range: '2001:db8::/32'")
    end)
  end)

  describe("port and timeout", function()
    it("port", function()
      ok(typedefs.port, 0)
      ok(typedefs.port, 65535)
      fails(typedefs.port, 65536, "value should be between 0 and 65535")
      fails(typedefs.port, 80.5, "expected an integer")
    end)

    it("timeout", function()
      ok(typedefs.timeout, 60000)
      fails(typedefs.timeout, 2 ^ 31, "value should be between 0 and 2147483646")
      fails(typedefs.timeout, -1, "value should be between 0 and 2147483646")
    end)
  end)

  describe("path", function()
    it("accepts RFC 3986 paths", function()
      ok(typedefs.path, "/")
      ok(typedefs.path, "/v1/chat/completions")
      ok(typedefs.path, "/a%20b")
      ok(typedefs.path, "/a:b@c!$&'()*+,;=")
    end)

    it("refuses the rest, each with its message", function()
      fails(typedefs.path, "v1", "should start with: /")
      fails(typedefs.path, "/a//b", "must not have empty segments")
      fails(typedefs.path, "/a b",
            "invalid path: '/a b' (characters outside of the reserved list of RFC 3986 found)")
      fails(typedefs.path, "/a%2", "invalid url-encoded value: '%2'")
      fails(typedefs.path, "/a%zz", "invalid url-encoded value: '%zz'")
    end)
  end)

  describe("url", function()
    it("needs a scheme and a host", function()
      ok(typedefs.url, "http://example.com")
      ok(typedefs.url, "https://user:pw@example.com:8443/x?y=1#z")
      ok(typedefs.url, "http://[::1]:8080/")
      fails(typedefs.url, "example.com/path", "missing host in url")
      fails(typedefs.url, "//example.com/path", "missing scheme in url")
    end)
  end)

  describe("header_name", function()
    it("allows letters, digits, '-' and '_'", function()
      ok(typedefs.header_name, "apikey")
      ok(typedefs.header_name, "X-API-Key")
      ok(typedefs.header_name, "x_request_id")
    end)

    it("refuses anything else", function()
      fails(typedefs.header_name, "api key",
            "bad header name 'api key', allowed characters are A-Z, a-z, 0-9, '_', and '-'")
      fails(typedefs.header_name, "x:y",
            "bad header name 'x:y', allowed characters are A-Z, a-z, 0-9, '_', and '-'")
      fails(typedefs.header_name, "é",
            "bad header name 'é', allowed characters are A-Z, a-z, 0-9, '_', and '-'")
    end)
  end)

  describe("cookie_name", function()
    it("is an RFC 2616 token", function()
      ok(typedefs.cookie_name, "session_id")
      fails(typedefs.cookie_name, "a=b")
      fails(typedefs.cookie_name, "a b")
    end)
  end)

  describe("name and utf8_name", function()
    it("name", function()
      ok(typedefs.name, "my-service_1.v2~x")
      fails(typedefs.name, "my service",
            "invalid value 'my service': it must only contain alphanumeric and '., -, _, ~' characters")
    end)

    it("utf8_name", function()
      ok(typedefs.utf8_name, "café-1")
      fails(typedefs.utf8_name, "a/b",
            "invalid value 'a/b': the only accepted ascii characters are alphanumerics or ., -, _, and ~")
      fails(typedefs.utf8_name, "a\255b",
            "invalid utf-8 character sequence detected at position 2")
    end)
  end)

  describe("tags", function()
    it("is a set of printable tags", function()
      ok(typedefs.tags, { "team-a", "prod", "ünïcode" })
      fails(typedefs.tags, { "ok", "a/b" }, { [2] =
        "invalid tag 'a/b': expected printable ascii (except `,` and `/`) or valid utf-8 sequences" })
      fails(typedefs.tags, { null }, { [1] = "required field missing" })
    end)
  end)

  describe("sni and wildcard_host", function()
    it("sni is a name, without port, not an IP", function()
      ok(typedefs.sni, "example.com")
      fails(typedefs.sni, "10.0.0.1", "must not be an IP")
      fails(typedefs.sni, "example.com:443", "must not have a port")
    end)

    it("wildcard_host takes one leading or trailing wildcard", function()
      ok(typedefs.wildcard_host, "*.example.com")
      ok(typedefs.wildcard_host, "example.*")
      fails(typedefs.wildcard_host, "ex*ample.com", "wildcard must be leftmost or rightmost character")
      fails(typedefs.wildcard_host, "*.example.*", "only one wildcard must be specified")
    end)
  end)

  describe("uuid and timestamps", function()
    it("uuid", function()
      ok(typedefs.uuid, "0f6e2c1a-7b3d-4c5e-8f9a-0b1c2d3e4f5a")
      fails(typedefs.uuid, "0f6e2c1a", "expected a valid UUID")
    end)

    it("auto_timestamp_s", function()
      ok(typedefs.auto_timestamp_s, 1700000000)
      fails(typedefs.auto_timestamp_s, -5, "expected a valid timestamp")
    end)
  end)

  describe("protocols", function()
    it("protocols: any of Kong's protocols, default the http ones", function()
      ok(typedefs.protocols, { "tcp", "tls", "udp", "tls_passthrough", "grpc" })
      fails(typedefs.protocols, { "ws" }, { [1] =
        "expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp" })
      assert.same({ "grpc", "grpcs", "http", "https" }, typedefs.protocols.default)
      assert.is_true(typedefs.protocols.required)
    end)

    it("protocols_http: only grpc, grpcs, http, https", function()
      ok(typedefs.protocols_http, { "http", "https" })
      fails(typedefs.protocols_http, { "tcp" }, { [1] = "expected one of: grpc, grpcs, http, https" })
      fails(typedefs.protocols_http, "http", "expected a set")
    end)
  end)

  describe("no_consumer, no_route, no_service", function()
    it("only accept null", function()
      for _, t in ipairs({ typedefs.no_consumer, typedefs.no_route, typedefs.no_service }) do
        ok(t, null)
        fails(t, "x", "value must be null")
        fails(t, { id = "x" }, "value must be null")
      end
    end)
  end)

  describe("route typedefs", function()
    it("router_path: fixed and regex paths", function()
      ok(typedefs.router_path, "/v1")
      ok(typedefs.router_path, "~/v1/(chat|embeddings)$")
      fails(typedefs.router_path, "v1", "should start with: / (fixed path) or ~/ (regex path)")
      fails(typedefs.router_path, "/a/../b", "non-normalized path, consider use '/b' instead")
      fails(typedefs.router_path, "/a/%7e", "non-normalized path, consider use '/a/~' instead")
      local res, err = core.validate_field(typedefs.router_path, "~/v1/(unclosed")
      assert.is_nil(res)
      assert.matches("^invalid regex: '/v1/%(unclosed' %(PCRE returned: ", err)
    end)

    it("hosts: at most one wildcard, leftmost or rightmost", function()
      ok(typedefs.hosts, { "example.com", "*.example.com", "api.*" })
      fails(typedefs.hosts, { "a.*.com" }, { [1] = "invalid wildcard: must be placed at leftmost or rightmost label" })
      fails(typedefs.hosts, { "*.a.*" }, { [1] = "invalid wildcard: must have at most one wildcard" })
    end)

    it("methods: upper-case words", function()
      ok(typedefs.methods, { "GET", "POST" })
      fails(typedefs.methods, { "get" }, { [1] = "invalid value: get" })
    end)

    it("headers: a map of header names to lists", function()
      ok(typedefs.headers, { ["x-version"] = { "1", "2" } })
      fails(typedefs.headers, { ["bad name"] = { "1" } },
            "bad header name 'bad name', allowed characters are A-Z, a-z, 0-9, '_', and '-'")
    end)

    it("sources: ip or port", function()
      ok(typedefs.sources, { { ip = "10.0.0.0/8" }, { port = 80 } })
      fails(typedefs.sources, { {} }, { [1] = { ["@entity"] = {
        "at least one of these fields must be non-empty: 'ip', 'port'" } } })
    end)
  end)

  describe("others", function()
    it("semantic_version", function()
      ok(typedefs.semantic_version, "3.9.1")
      ok(typedefs.semantic_version, "1.0.0-beta")
      fails(typedefs.semantic_version, "v3", "invalid version number: must be in format of X.Y.Z")
      fails(typedefs.semantic_version, "3..1", "must not have empty version segments")
    end)

    it("lua_code: a map of code that compiles", function()
      ok(typedefs.lua_code, { access = "return 1" })
      local res, err = core.validate_field(typedefs.lua_code, { access = "return (" })
      assert.is_nil(res)
      assert.matches("^Error parsing function: ", err)
    end)

    it("http_method", function()
      ok(typedefs.http_method, "PATCH")
      fails(typedefs.http_method, "Patch", "invalid value: Patch")
    end)

    it("certificate and key: PEM framing", function()
      ok(typedefs.certificate, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
      fails(typedefs.certificate, "MIIB")
      ok(typedefs.key, "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n")
    end)

    it("queue: Kong's queue defaults", function()
      local out = core.process_auto_fields({ fields = { { queue = typedefs.queue { required = true } } } },
                                           {}, "insert")
      assert.same({ max_batch_size = 1, max_coalescing_delay = 1, max_entries = 10000,
                    max_bytes = null, max_retry_time = 60, initial_retry_delay = 0.01,
                    max_retry_delay = 60, concurrency_limit = 1 }, out.queue)
      fails(typedefs.queue, { concurrency_limit = 2 }, { concurrency_limit = "expected one of: -1, 1" })
    end)

    it("ttl", function()
      ok(typedefs.ttl, 3600)
      fails(typedefs.ttl, -1, "value should be between 0 and 100000000")
    end)
  end)
end)


describe("kong.meta", function()
  it("is Kong 3.9.1", function()
    local meta = require "kong.meta"
    assert.equal("3.9.1", meta.version)
    assert.equal("3.9.1", meta._VERSION)
    assert.equal("kong", meta._NAME)
    assert.equal("kong/3.9.1", meta._SERVER_TOKENS)
    assert.same({ 3, 9, 1 }, { meta._VERSION_TABLE.major, meta._VERSION_TABLE.minor, meta._VERSION_TABLE.patch })
    assert.equal("3.9.1", tostring(meta._VERSION_TABLE))
  end)
end)


describe("kong.tools.redis.schema", function()
  it("is a record with Kong 3.9's redis defaults", function()
    local redis = require("kong.tools.redis.schema").config_schema
    local def = { fields = { { redis = redis } } }
    local out = core.process_auto_fields(def, { redis = {} }, "insert")
    assert.same({ host = null, port = 6379, timeout = 2000, username = null, password = null,
                  database = 0, ssl = false, ssl_verify = false, server_name = null }, out.redis)
    assert.is_true(core.validate(def, out))
  end)

  it("allows an empty password (len_min = 0) and checks the server name", function()
    local redis = require("kong.tools.redis.schema").config_schema
    ok(redis, { password = "" })
    fails(redis, { server_name = "10.0.0.1" }, { server_name = "must not be an IP" })
  end)
end)
