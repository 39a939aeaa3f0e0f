--- kong.meta as Kong 3.9.1 ships it: the version plugins report as their
-- VERSION and that kong.version / the Server header carry.
local version = setmetatable({
  major = 3,
  minor = 9,
  patch = 1,
}, {
  __tostring = function(t)
    return string.format("%d.%d.%d%s", t.major, t.minor, t.patch, t.suffix or "")
  end,
})

return {
  _NAME = "kong",
  _VERSION = tostring(version),
  _VERSION_TABLE = version,
  _SERVER_TOKENS = "kong/" .. tostring(version),
  -- unified version string for CE and EE
  version = tostring(version),
  -- the OpenResty release Kong 3.9 is built on
  _DEPENDENCIES = {
    nginx = { "1.25.3.2" },
  },
}
