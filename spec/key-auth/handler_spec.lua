-- Unit test of the bundled key-auth handler's logic. The PDK (`kong`) and the
-- gateway's credential store (kong_local.db) are stubs here; the gateway's
-- own integration tests run key-auth inside nginx.
local schema = require "kong_local.schema"


local CONSUMERS = {
  ["c-1"] = { id = "c-1", username = "alice", custom_id = "cust-1" },
  ["c-2"] = { id = "c-2", username = "bob" },
  ["anon"] = { id = "anon", username = "guest" },
}

local CREDENTIALS = {
  ["alice-key"] = { id = "cred-1", key = "alice-key", consumer = { id = "c-1" } },
  ["bob-key"] = { id = "cred-2", key = "bob-key", consumer = { id = "c-2" } },
  ["expired-key"] = { id = "cred-3", key = "expired-key", consumer = { id = "c-1" }, ttl = 0 },
}


-- The store stub answers like kong_local.db and records its calls.
local store = { calls = {} }
function store.find_keyauth_credential(key)
  store.calls[#store.calls + 1] = { "credential", key }
  local c = CREDENTIALS[key]
  if not c then return nil end
  return { id = c.id, key = c.key, consumer = { id = c.consumer.id }, ttl = c.ttl }
end
function store.find_consumer(id_or_username, search_by_username)
  store.calls[#store.calls + 1] = { "consumer", id_or_username, search_by_username }
  local c = CONSUMERS[id_or_username]
  if not c and search_by_username then
    for _, candidate in pairs(CONSUMERS) do
      if candidate.username == id_or_username then
        c = candidate
      end
    end
  end
  if not c then return nil end
  return { id = c.id, username = c.username, custom_id = c.custom_id }
end


-- ngx.req.get_headers() tables look keys up case-insensitively, with "_"
-- read as "-".
local function request_headers(raw)
  local t = {}
  for k, v in pairs(raw or {}) do
    t[k:lower()] = v
  end
  return setmetatable(t, { __index = function(tbl, k)
    return rawget(tbl, (k:lower():gsub("_", "-")))
  end })
end


-- One request's worth of PDK state, inspected by the tests.
local req
local kong_stub = {
  request = {
    get_headers = function() return req.headers end,
    get_query = function() return req.query end,
    get_body = function()
      if req.body_err then return nil, req.body_err end
      return req.body
    end,
    get_method = function() return req.method end,
  },
  client = {
    authenticate = function(consumer, credential)
      if not consumer and not credential then
        error("either credential or consumer must be provided", 2)
      end
      req.authenticated = { consumer = consumer, credential = credential }
    end,
    get_credential = function() return req.existing_credential end,
  },
  service = {
    request = {
      set_header = function(name, value) req.upstream_set[name] = value end,
      clear_header = function(name) req.upstream_cleared[#req.upstream_cleared + 1] = name end,
      clear_query_arg = function(name) req.query_cleared[#req.query_cleared + 1] = name end,
      set_body = function(body) req.body_set = body end,
    },
  },
  response = {
    error = function(status, message, headers)
      req.response = { status = status, message = message, headers = headers }
    end,
  },
  log = {
    info = function(...) req.logs[#req.logs + 1] = table.concat({ ... }) end,
    err = function(...) req.logs[#req.logs + 1] = table.concat({ ... }) end,
    debug = function() end,
  },
}


local function new_request(opts)
  opts = opts or {}
  req = {
    headers = request_headers(opts.headers),
    query = opts.query or {},
    body = opts.body,
    body_err = opts.body_err,
    method = opts.method or "GET",
    existing_credential = opts.existing_credential,
    upstream_set = {},
    upstream_cleared = {},
    query_cleared = {},
    logs = {},
  }
  store.calls = {}
end


local function cleared(name)
  for _, n in ipairs(req.upstream_cleared) do
    if n == name then return true end
  end
  return false
end


describe("key-auth handler", function()
  local handler
  local key_auth_schema = require "kong.plugins.key-auth.schema"

  -- the conf a handler gets: the entry's config with Kong's defaults
  local function conf(config)
    return assert(schema.process_plugin_config("key-auth", key_auth_schema,
                                               { name = "key-auth", config = config or {} }))
  end

  setup(function()
    _G.kong = kong_stub
    package.loaded["kong_local.db"] = store
    package.loaded["kong.plugins.key-auth.handler"] = nil
    handler = require "kong.plugins.key-auth.handler"
  end)

  teardown(function()
    _G.kong = nil
    package.loaded["kong_local.db"] = nil
    package.loaded["kong.plugins.key-auth.handler"] = nil
  end)

  it("has Kong 3.9's PRIORITY and VERSION", function()
    assert.equal(1250, handler.PRIORITY)
    assert.equal("3.9.1", handler.VERSION)
    assert.is_function(handler.access)
  end)

  describe("without a key", function()
    it("answers 401 'No API key found in request' with WWW-Authenticate: Key", function()
      new_request()
      handler:access(conf())
      assert.same({ status = 401, message = "No API key found in request",
                    headers = { ["WWW-Authenticate"] = "Key" } }, req.response)
      assert.is_nil(req.authenticated)
    end)

    it("names the realm when one is configured", function()
      new_request()
      handler:access(conf({ realm = "kong" }))
      assert.equal('Key realm="kong"', req.response.headers["WWW-Authenticate"])
    end)

    it("treats an empty key as no key", function()
      new_request({ headers = { apikey = "" } })
      handler:access(conf())
      assert.equal("No API key found in request", req.response.message)
      assert.same({}, store.calls)
    end)
  end)

  describe("with a key that matches no credential", function()
    it("answers 401 'Unauthorized'", function()
      new_request({ headers = { apikey = "nope" } })
      handler:access(conf())
      assert.same({ status = 401, message = "Unauthorized",
                    headers = { ["WWW-Authenticate"] = "Key" } }, req.response)
      assert.same({ { "credential", "nope" } }, store.calls)
    end)

    it("counts an expired credential (ttl 0) as none", function()
      new_request({ headers = { apikey = "expired-key" } })
      handler:access(conf())
      assert.equal("Unauthorized", req.response.message)
      assert.is_nil(req.authenticated)
    end)
  end)

  describe("with a valid key", function()
    it("authenticates the consumer and credential and sets the upstream headers", function()
      new_request({ headers = { apikey = "alice-key" } })
      handler:access(conf())
      assert.is_nil(req.response)
      assert.same({ id = "c-1", username = "alice", custom_id = "cust-1" }, req.authenticated.consumer)
      assert.equal("cred-1", req.authenticated.credential.id)
      assert.same({
        ["X-Consumer-ID"] = "c-1",
        ["X-Consumer-Custom-ID"] = "cust-1",
        ["X-Consumer-Username"] = "alice",
        ["X-Credential-Identifier"] = "cred-1",
      }, req.upstream_set)
      assert.is_true(cleared("X-Anonymous-Consumer"))
      -- the consumer is looked up by id only
      assert.same({ "consumer", "c-1", false }, store.calls[2])
    end)

    it("clears the headers the consumer has no value for", function()
      new_request({ headers = { apikey = "bob-key" } })
      handler:access(conf())
      assert.is_nil(req.upstream_set["X-Consumer-Custom-ID"])
      assert.is_true(cleared("X-Consumer-Custom-ID"))
      assert.equal("bob", req.upstream_set["X-Consumer-Username"])
    end)

    it("leaves the key in the request by default", function()
      new_request({ headers = { apikey = "alice-key" }, query = { apikey = "alice-key" } })
      handler:access(conf())
      assert.is_false(cleared("apikey"))
      assert.same({}, req.query_cleared)
    end)
  end)

  describe("where the key is looked for", function()
    it("matches header names case-insensitively", function()
      new_request({ headers = { ["x-api-key"] = "alice-key" } })
      handler:access(conf({ key_names = { "X-API-Key" } }))
      assert.is_nil(req.response)
      assert.equal("c-1", req.authenticated.consumer.id)
    end)

    it("reads the query string", function()
      new_request({ query = { apikey = "bob-key" } })
      handler:access(conf())
      assert.equal("c-2", req.authenticated.consumer.id)
    end)

    it("prefers the header to the query string", function()
      new_request({ headers = { apikey = "alice-key" }, query = { apikey = "bob-key" } })
      handler:access(conf())
      assert.equal("c-1", req.authenticated.consumer.id)
    end)

    it("tries the key names in order", function()
      new_request({ headers = { second = "bob-key", first = "alice-key" } })
      handler:access(conf({ key_names = { "first", "second" } }))
      assert.equal("c-1", req.authenticated.consumer.id)
      new_request({ headers = { second = "bob-key" } })
      handler:access(conf({ key_names = { "first", "second" } }))
      assert.equal("c-2", req.authenticated.consumer.id)
    end)

    it("ignores the header when key_in_header is false", function()
      new_request({ headers = { apikey = "alice-key" } })
      handler:access(conf({ key_in_header = false }))
      assert.equal("No API key found in request", req.response.message)
    end)

    it("ignores the query string when key_in_query is false", function()
      new_request({ query = { apikey = "alice-key" } })
      handler:access(conf({ key_in_query = false }))
      assert.equal("No API key found in request", req.response.message)
    end)

    it("does not read the body unless key_in_body is set", function()
      new_request({ body = { apikey = "alice-key" } })
      handler:access(conf())
      assert.equal("No API key found in request", req.response.message)

      new_request({ body = { apikey = "alice-key" } })
      handler:access(conf({ key_in_body = true }))
      assert.is_nil(req.response)
      assert.equal("c-1", req.authenticated.consumer.id)
    end)

    it("goes on without the body when it cannot be parsed", function()
      new_request({ body_err = "unsupported content type" })
      handler:access(conf({ key_in_body = true }))
      assert.equal("No API key found in request", req.response.message)
      assert.same({ "Cannot process request body: unsupported content type" }, req.logs)
    end)

    it("refuses a key given twice", function()
      new_request({ headers = { apikey = { "alice-key", "bob-key" } } })
      handler:access(conf())
      assert.same({ status = 401, message = "Duplicate API key found",
                    headers = { ["WWW-Authenticate"] = "Key" } }, req.response)
      assert.same({}, store.calls)
    end)
  end)

  describe("hide_credentials", function()
    it("removes the key from the upstream headers and query", function()
      new_request({ headers = { apikey = "alice-key" } })
      handler:access(conf({ hide_credentials = true }))
      assert.is_true(cleared("apikey"))
      assert.same({ "apikey" }, req.query_cleared)
      assert.is_nil(req.body_set)
    end)

    it("removes the key from the body when the body is searched", function()
      new_request({ body = { apikey = "alice-key", prompt = "hi" } })
      handler:access(conf({ hide_credentials = true, key_in_body = true }))
      assert.same({ prompt = "hi" }, req.body_set)
    end)

    it("leaves an unreadable body alone", function()
      new_request({ headers = { apikey = "alice-key" }, body_err = "bad json" })
      handler:access(conf({ hide_credentials = true, key_in_body = true }))
      assert.is_nil(req.body_set)
      assert.is_nil(req.response)
    end)
  end)

  describe("preflight requests", function()
    it("are let through when run_on_preflight is false", function()
      new_request({ method = "OPTIONS" })
      handler:access(conf({ run_on_preflight = false }))
      assert.is_nil(req.response)
      assert.is_nil(req.authenticated)
    end)

    it("are authenticated by default", function()
      new_request({ method = "OPTIONS" })
      handler:access(conf())
      assert.equal(401, req.response.status)
    end)
  end)

  describe("anonymous", function()
    it("lets a request without a key through as the anonymous consumer", function()
      new_request()
      handler:access(conf({ anonymous = "anon" }))
      assert.is_nil(req.response)
      assert.same({ id = "anon", username = "guest" }, req.authenticated.consumer)
      assert.is_nil(req.authenticated.credential)
      assert.is_true(req.upstream_set["X-Anonymous-Consumer"])
      assert.equal("anon", req.upstream_set["X-Consumer-ID"])
      assert.is_true(cleared("X-Credential-Identifier"))
      -- looked up by id, then by username
      assert.same({ "consumer", "anon", true }, store.calls[1])
    end)

    it("finds the anonymous consumer by username", function()
      new_request({ headers = { apikey = "wrong" } })
      handler:access(conf({ anonymous = "guest" }))
      assert.equal("anon", req.authenticated.consumer.id)
    end)

    it("still authenticates a valid key normally", function()
      new_request({ headers = { apikey = "alice-key" } })
      handler:access(conf({ anonymous = "anon" }))
      assert.equal("c-1", req.authenticated.consumer.id)
      assert.is_true(cleared("X-Anonymous-Consumer"))
    end)

    it("does nothing when another plugin already authenticated the request", function()
      new_request({ existing_credential = { id = "other" } })
      handler:access(conf({ anonymous = "anon" }))
      assert.is_nil(req.authenticated)
      assert.is_nil(req.response)
      assert.same({}, store.calls)
    end)

    it("fails the request (a 500 in Kong) when the anonymous consumer does not exist", function()
      new_request()
      assert.has_error(function() handler:access(conf({ anonymous = "ghost" })) end,
                       "anonymous consumer ghost is configured but doesn't exist")
    end)

    it("without anonymous, a request authenticated by another plugin still needs a key", function()
      new_request({ existing_credential = { id = "other" } })
      handler:access(conf())
      assert.equal(401, req.response.status)
    end)
  end)

  it("answers 500 when the config has no key_names (a broken conf)", function()
    new_request()
    handler:access({ key_in_header = true })
    assert.same({ status = 500, message = "Invalid plugin configuration" },
                { status = req.response.status, message = req.response.message })
  end)
end)
