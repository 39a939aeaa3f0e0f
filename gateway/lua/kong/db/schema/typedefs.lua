--- The local gateway's kong.db.schema.typedefs: the field definitions plugin
-- schemas build on, with Kong 3.9's attributes and working validators.
-- Descriptions are left out: the validator does not read them.
local core = require "kong_local.schema.core"
local net = require "kong_local.schema.net"
local env = require "kong_local.schema.env"

local define = core.define
local null = core.null

local type = type
local tostring = tostring
local match = string.match
local gsub = string.gsub
local find = string.find
local sub = string.sub
local sort = table.sort


local function validate_host(host)
  local res, err_or_port = net.normalize_ip(host)
  if type(err_or_port) == "string" and err_or_port ~= "invalid port number" then
    return nil, "invalid value: " .. host
  end
  if err_or_port == "invalid port number" or type(res.port) == "number" then
    return nil, "must not have a port"
  end
  return true
end


local function validate_host_with_optional_port(host)
  local res, err_or_port = net.normalize_ip(host)
  return (res and true or nil), err_or_port
end


local function validate_ip(ip)
  if net.is_valid_ip(ip) then
    return true
  end
  return nil, "not an ip address: " .. ip
end


local function validate_ip_or_cidr(ip_or_cidr)
  if net.is_valid_ip_or_cidr(ip_or_cidr) then
    return true
  end
  return nil, "invalid ip or cidr range: '" .. ip_or_cidr .. "'"
end


local function validate_ip_or_cidr_v4(ip_or_cidr_v4)
  if net.is_valid_ip_or_cidr_v4(ip_or_cidr_v4) then
    return true
  end
  return nil, "invalid ipv4 cidr range: '" .. ip_or_cidr_v4 .. "'"
end


local function validate_name(name)
  if not match(name, "^[%w%.%-%_~]+$") then
    return nil,
      "invalid value '" .. name ..
      "': it must only contain alphanumeric and '., -, _, ~' characters"
  end
  return true
end


local function validate_utf8_string(str)
  local ok, index = net.validate_utf8(str)
  if not ok then
    return nil, "invalid utf-8 character sequence detected at position " .. tostring(index)
  end
  return true
end


local function validate_tag(tag)
  local ok, err = validate_utf8_string(tag)
  if not ok then
    return nil, err
  end
  -- printable ASCII except ',' and '/', plus non-ASCII UTF-8
  if not match(tag, "^[ \033-\043\045\046\048-\126\128-\244]+$") then
    return nil,
      "invalid tag '" .. tag ..
      "': expected printable ascii (except `,` and `/`) or valid utf-8 sequences"
  end
  return true
end


local function validate_utf8_name(name)
  local ok, err = validate_utf8_string(name)
  if not ok then
    return nil, err
  end
  if not match(name, "^[%w%.%-%_~\128-\244]+$") then
    return nil,
      "invalid value '" .. name ..
      "': the only accepted ascii characters are alphanumerics or ., -, _, and ~"
  end
  return true
end


local function validate_sni(host)
  local res, err_or_port = net.normalize_ip(host)
  if type(err_or_port) == "string" and err_or_port ~= "invalid port number" then
    return nil, "invalid value: " .. host
  end
  if res and res.type ~= "name" then
    return nil, "must not be an IP"
  end
  if err_or_port == "invalid port number" or type(res.port) == "number" then
    return nil, "must not have a port"
  end
  return true
end


local function validate_wildcard_host(host)
  local idx = find(host, "*", nil, true)
  if idx then
    if idx ~= 1 and idx ~= #host then
      return nil, "wildcard must be leftmost or rightmost character"
    end
    local mock_host, count = gsub(host, "%*", "wildcard")
    if count > 1 then
      return nil, "only one wildcard must be specified"
    end
    host = mock_host
  end
  return validate_sni(host)
end


local function validate_url(url)
  local parsed_url, err = net.parse_url(url)
  if not parsed_url then
    return nil, "could not parse url. " .. err
  end
  if not parsed_url.host then
    return nil, "missing host in url"
  end
  if not parsed_url.scheme then
    return nil, "missing scheme in url"
  end
  return true
end


-- Kong parses PEM with OpenSSL; here only the PEM framing is checked.
local function pem_block_check(kind)
  return function(value)
    if find(value, "-----BEGIN [%u%s]*" .. kind) and find(value, "-----END [%u%s]*" .. kind) then
      return true
    end
    return nil, "invalid " .. (kind == "CERTIFICATE" and "certificate" or "key")
                .. ": not a PEM-encoded " .. kind:lower()
  end
end


local typedefs = {}


typedefs.http_method = define {
  type = "string",
  match = "^%u+$",
}


-- constants.PROTOCOLS and the ones of them that belong to the http subsystem
local PROTOCOLS = { "grpc", "grpcs", "http", "https", "tcp", "tls", "tls_passthrough", "udp" }
local HTTP_PROTOCOLS = { "grpc", "grpcs", "http", "https" }
sort(HTTP_PROTOCOLS)

typedefs.protocol = define {
  type = "string",
  one_of = PROTOCOLS,
}


typedefs.host = define {
  type = "string",
  custom_validator = validate_host,
}


typedefs.redis_host = define {
  type = "string",
  custom_validator = validate_host,
}


typedefs.host_with_optional_port = define {
  type = "string",
  custom_validator = validate_host_with_optional_port,
}


typedefs.wildcard_host = define {
  type = "string",
  custom_validator = validate_wildcard_host,
}


typedefs.ip = define {
  type = "string",
  custom_validator = validate_ip,
}


typedefs.ip_or_cidr = define {
  type = "string",
  custom_validator = validate_ip_or_cidr,
}


typedefs.cidr_v4 = define {
  type = "string",
  custom_validator = validate_ip_or_cidr_v4,
}


-- deprecated alias
typedefs.cidr = typedefs.cidr_v4


typedefs.port = define {
  type = "integer",
  between = { 0, 65535 },
}


typedefs.path = define {
  type = "string",
  starts_with = "/",
  match_none = {
    { pattern = "//",
      err = "must not have empty segments",
    },
  },
  custom_validator = net.validate_path,
}


typedefs.url = define {
  type = "string",
  custom_validator = validate_url,
}


typedefs.cookie_name = define {
  type = "string",
  custom_validator = net.validate_http_token,
}


typedefs.header_name = define {
  type = "string",
  custom_validator = net.validate_header_name,
}


typedefs.timeout = define {
  type = "integer",
  between = { 0, 2 ^ 31 - 2 },
}


typedefs.uuid = define {
  type = "string",
  uuid = true,
  auto = true,
}


typedefs.auto_timestamp_s = define {
  type = "integer",
  timestamp = true,
  auto = true,
}


typedefs.auto_timestamp_ms = define {
  type = "number",
  timestamp = true,
  auto = true,
}


typedefs.no_route = define {
  type = "foreign",
  reference = "routes",
  eq = null,
}


typedefs.no_service = define {
  type = "foreign",
  reference = "services",
  eq = null,
}


typedefs.no_consumer = define {
  type = "foreign",
  reference = "consumers",
  eq = null,
}


typedefs.name = define {
  type = "string",
  unique = true,
  custom_validator = validate_name,
}


typedefs.utf8_name = define {
  type = "string",
  unique = true,
  custom_validator = validate_utf8_name,
}


typedefs.sni = define {
  type = "string",
  custom_validator = validate_sni,
}


typedefs.redis_server_name = define {
  type = "string",
  custom_validator = validate_sni,
}


typedefs.certificate = define {
  type = "string",
  custom_validator = pem_block_check("CERTIFICATE"),
}


typedefs.key = define {
  type = "string",
  custom_validator = pem_block_check("KEY"),
}


typedefs.tag = define {
  type = "string",
  required = true,
  custom_validator = validate_tag,
}


typedefs.tags = define {
  type = "set",
  elements = typedefs.tag,
}


typedefs.protocols = define {
  type = "set",
  required = true,
  default = HTTP_PROTOCOLS,
  elements = typedefs.protocol,
}


typedefs.protocols_http = define {
  type = "set",
  required = true,
  default = HTTP_PROTOCOLS,
  elements = { type = "string", one_of = HTTP_PROTOCOLS },
}


-- route typedefs ----------------------------------------------------------------

local function validate_host_with_wildcards(host)
  local no_wildcards = gsub(host, "%*", "abc")
  return validate_host_with_optional_port(no_wildcards)
end


local function validate_path_with_regexes(path)
  local ok, err, err_code = net.validate_path(path)
  if err_code == "percent" then
    return ok, err, err_code
  end

  if sub(path, 1, 1) ~= "~" then
    -- a prefix path must be in normalized form
    local normalized = net.normalize_uri(path, true)
    if path ~= normalized then
      return nil, "non-normalized path, consider use '" .. normalized .. "' instead"
    end
    return true
  end

  path = sub(path, 2)
  -- the router compiles it with ngx.re and the "aj" options
  local compiles, re_err = env.regex_compiles(path, "aj")
  if not compiles then
    return nil, string.format("invalid regex: '%s' (PCRE returned: %s)", path, tostring(re_err))
  end
  return true
end


local source_or_destination = {
  type = "record",
  fields = {
    { ip = typedefs.ip_or_cidr },
    { port = typedefs.port },
  },
  entity_checks = {
    { at_least_one_of = { "ip", "port" } },
  },
}

typedefs.sources = define {
  type = "set",
  elements = source_or_destination,
}

typedefs.no_sources = define(typedefs.sources { eq = null })

typedefs.destinations = define {
  type = "set",
  elements = source_or_destination,
}

typedefs.no_destinations = define(typedefs.destinations { eq = null })

typedefs.methods = define {
  type = "set",
  elements = typedefs.http_method,
}

typedefs.no_methods = define(typedefs.methods { eq = null })

typedefs.hosts = define {
  type = "array",
  elements = {
    type = "string",
    match_all = {
      {
        pattern = "^[^*]*%*?[^*]*$",
        err = "invalid wildcard: must have at most one wildcard",
      },
    },
    match_any = {
      patterns = { "^%*%.", "%.%*$", "^[^*]*$" },
      err = "invalid wildcard: must be placed at leftmost or rightmost label",
    },
    custom_validator = validate_host_with_wildcards,
  },
}

typedefs.no_hosts = define(typedefs.hosts { eq = null })

typedefs.router_path = define {
  type = "string",
  match_any = {
    patterns = { "^/", "^~/" },
    err = "should start with: / (fixed path) or ~/ (regex path)",
  },
  match_none = {
    { pattern = "//",
      err = "must not have empty segments",
    },
  },
  custom_validator = validate_path_with_regexes,
}

typedefs.router_paths = define {
  type = "array",
  elements = typedefs.router_path,
}

typedefs.no_paths = define(typedefs.router_paths { eq = null })

typedefs.headers = define {
  type = "map",
  keys = typedefs.header_name,
  values = {
    type = "array",
    elements = {
      type = "string",
    },
  },
}

typedefs.no_headers = define(typedefs.headers { eq = null })

typedefs.semantic_version = define {
  type = "string",
  match_any = {
    patterns = { "^%d+[%.%d]*$", "^%d+[%.%d]*%-?.*$", },
    err = "invalid version number: must be in format of X.Y.Z",
  },
  match_none = {
    {
      pattern = "%.%.",
      err = "must not have empty version segments",
    },
  },
}


-- Kong loads these keys with OpenSSL; here only the PEM framing is checked.
local function validate_pem_keys(values)
  local public_key = values.public_key
  local private_key = values.private_key
  if type(public_key) == "string" and not core.is_reference(public_key)
     and not find(public_key, "-----BEGIN [%u%s]*PUBLIC KEY") then
    return false, "could not load public key"
  end
  if type(private_key) == "string" and not core.is_reference(private_key)
     and not find(private_key, "-----BEGIN [%u%s]*PRIVATE KEY") then
    return false, "could not load private key"
  end
  return true
end

typedefs.pem = define {
  type = "record",
  required = false,
  fields = {
    { private_key = { type = "string", required = false, referenceable = true, encrypted = true } },
    { public_key = { type = "string", required = false, referenceable = true } },
  },
  entity_checks = {
    { at_least_one_of = { "private_key", "public_key" } },
  },
  custom_validator = validate_pem_keys,
}


local function optional_string(name)
  return { [name] = { type = "string", required = false } }
end

local function optional_strings(name)
  return { [name] = { type = "array", required = false,
                      elements = { type = "string", required = false } } }
end

-- Kong also loads the key with OpenSSL; here only the record shape is checked.
typedefs.jwk = define {
  type = "record",
  required = false,
  fields = {
    optional_string("issuer"), optional_string("kty"), optional_string("use"),
    optional_strings("key_ops"), optional_string("alg"),
    { kid = { type = "string", required = true } },
    optional_string("x5u"), optional_strings("x5c"), optional_string("x5t"),
    optional_string("x5t#S256"), optional_string("k"), optional_string("x"),
    optional_string("y"), optional_string("crv"), optional_string("n"),
    optional_string("e"), optional_string("d"), optional_string("p"),
    optional_string("q"), optional_string("dp"), optional_string("dq"),
    optional_string("qi"), optional_string("oth"), optional_string("r"),
    optional_string("t"),
  },
}


-- kong.tools.queue_schema
typedefs.queue = define {
  type = "record",
  fields = {
    { max_batch_size = { type = "integer", default = 1, between = { 1, 1000000 } } },
    { max_coalescing_delay = { type = "number", default = 1, between = { 0, 3600 } } },
    { max_entries = { type = "integer", default = 10000, between = { 1, 1000000 } } },
    { max_bytes = { type = "integer", default = nil } },
    { max_retry_time = { type = "number", default = 60 } },
    { initial_retry_delay = { type = "number", default = 0.01, between = { 0.001, 1000000 } } },
    { max_retry_delay = { type = "number", default = 60, between = { 0.001, 1000000 } } },
    { concurrency_limit = { type = "integer", default = 1, one_of = { -1, 1 } } },
  },
}


-- Kong runs the code through its sandbox; here it must at least compile.
local function validate_lua_expression(expression)
  local fn, err = loadstring(expression)
  if not fn then
    return nil, "Error parsing function: " .. tostring(err)
  end
  return true
end

typedefs.lua_code = define {
  type = "map",
  keys = { type = "string", len_min = 1 },
  values = { type = "string", len_min = 1, custom_validator = validate_lua_expression },
}


-- constants.DATABASE.DAO_MAX_TTL
typedefs.ttl = define {
  type = "number",
  between = { 0, 100000000 },
}


setmetatable(typedefs, {
  __index = function(_, k)
    error("schema typedef error: definition " .. tostring(k) .. " does not exist", 2)
  end,
})


return typedefs
