-- prompt-guard's schema validated by the gateway's copy of Kong's schema library, and the
-- handler fields Kong checks when loading the plugin.
dofile("spec/prompt-guard/helpers/ngx_re_pcre.lua").install()
local schema_lib = require "kong_local.schema"
local plugin_schema = require "kong.plugins.prompt-guard.schema"
local handler = require "kong.plugins.prompt-guard.handler"

local function validate(config)
  return schema_lib.process_plugin_config("prompt-guard", plugin_schema, { name = "prompt-guard", config = config })
end

local function error_text(config)
  local conf, err = validate(config)
  assert.is_nil(conf)
  return type(err) == "table" and require("cjson").encode(err) or tostring(err)
end

describe("prompt-guard schema", function()
  it("is a valid plugin schema", function()
    assert.truthy(schema_lib.validate_plugin_schema("prompt-guard", plugin_schema))
  end)

  it("fills the documented defaults", function()
    local conf = assert(validate({ deny_patterns = { "x" } }))
    assert.same({ "last_user", "block", 1048576, false, false, "prompt blocked by a guard rule" },
      { conf.match_scope, conf.mode, conf.max_body_size, conf.case_insensitive, conf.log_prompt, conf.error_message })
  end)

  it("accepts a Kong ai-prompt-guard style config (plain string arrays)", function()
    assert.truthy(validate({ allow_patterns = { ".*billing.*" }, deny_patterns = { [[.*(P|p)assword.*]] } }))
  end)

  it("accepts named rules beside plain patterns", function()
    local conf = assert(validate({ deny_patterns = { "a" }, deny_rules = { { name = "n", pattern = "b" } },
      allow_rules = { { name = "zh", pattern = "账单" } } }))
    assert.equal("n", conf.deny_rules[1].name)
  end)

  it("rejects an invalid pattern, naming it", function()
    assert.matches("invalid regex '%(unclosed'", error_text({ deny_patterns = { "(unclosed" } }))
    assert.matches("invalid regex '%[z%-a%]'", error_text({ allow_rules = { { name = "r", pattern = "[z-a]" } } }))
  end)

  it("rejects a pattern that is not valid UTF-8", function()
    assert.matches("invalid regex", error_text({ deny_patterns = { "bad\255" } }))
  end)

  it("a named rule needs a name and a pattern", function()
    assert.matches("required field missing", error_text({ deny_rules = { { pattern = "x" } } }))
    assert.matches("required field missing", error_text({ deny_rules = { { name = "x" } } }))
  end)

  it("needs at least one pattern or limit", function()
    assert.matches("at least one of these fields must be non%-empty", error_text({}))
    assert.matches("at least one of these fields must be non%-empty", error_text({ deny_patterns = {}, max_body_size = 10 }))
    assert.truthy(validate({ max_messages = 10 }))
    assert.truthy(validate({ max_prompt_length = 100 }))
  end)

  it("checks the enums and ranges", function()
    assert.matches("expected one of", error_text({ deny_patterns = { "x" }, match_scope = "everything" }))
    assert.matches("expected one of", error_text({ deny_patterns = { "x" }, mode = "warn" }))
    assert.truthy(error_text({ max_messages = 0 }))
    assert.truthy(error_text({ deny_patterns = { "x" }, max_body_size = 0 }))
  end)
end)

describe("prompt-guard handler", function()
  it("runs between request-size-limiting (951) and rate-limiting (910) / token-rate-limiting (905)", function()
    assert.equal(930, handler.PRIORITY)
    assert.is_true(handler.PRIORITY < 951 and handler.PRIORITY > 910)
  end)

  it("has an x.y.z VERSION and only an access phase", function()
    assert.matches("^%d+%.%d+%.%d+$", handler.VERSION)
    assert.is_function(handler.access)
    for _, phase in ipairs({ "rewrite", "header_filter", "body_filter", "log", "response" }) do
      assert.is_nil(handler[phase])
    end
  end)
end)
