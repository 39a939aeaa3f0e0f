-- The bundled key-auth plugin with Kong 3.9's behaviour, for the local
-- gateway. Kong looks credentials and consumers up through kong.db and
-- kong.cache; here the gateway's read-only store (kong_local.db) answers.
local kong_meta = require "kong.meta"
local store = require "kong_local.db"

local kong = kong
local type = type
local error = error
local ipairs = ipairs
local tostring = tostring
local fmt = string.format


-- constants.HEADERS in Kong
local HEADER_CONSUMER_ID           = "X-Consumer-ID"
local HEADER_CONSUMER_CUSTOM_ID    = "X-Consumer-Custom-ID"
local HEADER_CONSUMER_USERNAME     = "X-Consumer-Username"
local HEADER_CREDENTIAL_IDENTIFIER = "X-Credential-Identifier"
local HEADER_ANONYMOUS             = "X-Anonymous-Consumer"

local ERR_DUPLICATE_API_KEY   = "Duplicate API key found"
local ERR_NO_API_KEY          = "No API key found in request"
local ERR_INVALID_AUTH_CRED   = "Unauthorized"
local ERR_INVALID_PLUGIN_CONF = "Invalid plugin configuration"


local KeyAuthHandler = {
  VERSION = kong_meta.version,
  PRIORITY = 1250,
}


local EMPTY = {}


-- the header carries the value, or is removed when there is none
local function set_or_clear_header(name, value)
  if value then
    kong.service.request.set_header(name, value)
  else
    kong.service.request.clear_header(name)
  end
end


local function set_consumer(consumer, credential)
  kong.client.authenticate(consumer, credential)

  set_or_clear_header(HEADER_CONSUMER_ID, consumer and consumer.id)
  set_or_clear_header(HEADER_CONSUMER_CUSTOM_ID, consumer and consumer.custom_id)
  set_or_clear_header(HEADER_CONSUMER_USERNAME, consumer and consumer.username)
  set_or_clear_header(HEADER_CREDENTIAL_IDENTIFIER, credential and credential.id)

  -- Kong passes the boolean; its PDK turns it into "true"
  set_or_clear_header(HEADER_ANONYMOUS, not credential)
end


local function get_body()
  local body, err = kong.request.get_body()
  if err then
    kong.log.info("Cannot process request body: ", err)
    return EMPTY
  end
  return body or EMPTY
end


-- An expired credential (ttl reached 0) counts as no credential, as in Kong.
local function load_credential(key)
  local credential = store.find_keyauth_credential(key)
  if not credential or credential.ttl == 0 then
    return nil
  end
  return credential
end


local function unauthorized(message, www_auth_content)
  return { status = 401, message = message, headers = { ["WWW-Authenticate"] = www_auth_content } }
end


local function server_error(message)
  return { status = 500, message = message }
end


--- Finds the key where the config says to look, strips it when asked to,
-- and authenticates the consumer that owns it.
-- @return true, or nil and { status, message, headers }
local function do_authentication(conf)
  if type(conf.key_names) ~= "table" then
    kong.log.err("no conf.key_names set, aborting plugin execution")
    return nil, server_error(ERR_INVALID_PLUGIN_CONF)
  end

  local www_auth_content = conf.realm and fmt('Key realm="%s"', conf.realm) or "Key"
  local headers = kong.request.get_headers()
  local query = kong.request.get_query()
  local key
  local body

  for _, name in ipairs(conf.key_names) do
    local v

    if conf.key_in_header then
      v = headers[name]
    end

    if not v and conf.key_in_query then
      v = query[name]
    end

    if not v and conf.key_in_body then
      if not body then
        body = get_body()
      end
      v = body[name]
    end

    if type(v) == "string" then
      key = v

      if conf.hide_credentials then
        kong.service.request.clear_query_arg(name)
        kong.service.request.clear_header(name)

        if conf.key_in_body then
          if not body then
            body = get_body()
          end
          if body ~= EMPTY then
            body[name] = nil
            kong.service.request.set_body(body)
          end
        end
      end

      break

    elseif type(v) == "table" then
      -- the same key name given more than once
      return nil, unauthorized(ERR_DUPLICATE_API_KEY, www_auth_content)
    end
  end

  if not key or key == "" then
    return nil, unauthorized(ERR_NO_API_KEY, www_auth_content)
  end

  local credential = load_credential(key)
  if not credential then
    return nil, unauthorized(ERR_INVALID_AUTH_CRED, www_auth_content)
  end

  -- kong.client.load_consumer(credential.consumer.id): by id only
  local consumer = store.find_consumer(credential.consumer.id, false)

  set_consumer(consumer, credential)

  return true
end


local function set_anonymous_consumer(anonymous)
  -- kong.client.load_consumer(anonymous, true): by id, then by username
  local consumer = store.find_consumer(anonymous, true)
  if not consumer then
    -- in Kong, kong.client.authenticate(nil, nil) raises here: a 500
    return error("anonymous consumer " .. tostring(anonymous) .. " is configured but doesn't exist")
  end
  set_consumer(consumer)
end


--- With `anonymous` set, key-auth is one of several ways in ("logical OR"):
-- a request another auth plugin already authenticated passes, and a failed
-- one continues as the anonymous consumer.
local function logical_OR_authentication(conf)
  if kong.client.get_credential() then
    return
  end

  local ok = do_authentication(conf)
  if not ok then
    set_anonymous_consumer(conf.anonymous)
  end
end


--- Without `anonymous` ("logical AND"), a failure ends the request even if
-- another auth plugin succeeded.
local function logical_AND_authentication(conf)
  local ok, err = do_authentication(conf)
  if not ok then
    return kong.response.error(err.status, err.message, err.headers)
  end
end


function KeyAuthHandler:access(conf) -- luacheck: ignore 212
  if not conf.run_on_preflight and kong.request.get_method() == "OPTIONS" then
    return
  end

  if conf.anonymous then
    return logical_OR_authentication(conf)
  else
    return logical_AND_authentication(conf)
  end
end


return KeyAuthHandler
