-- kong.tracing (kong/pdk/tracing.lua): a no-op tracer, as Kong's with tracing_instrumentations off
-- (the local gateway has no tracing backend); process_span keeps its phase and argument checks.
local phases = require "kong_local.phases"

local function noop() end

local function new()
  local noop_span = setmetatable({}, { __index = function() return noop end })
  local tracing = {
    name = "noop",
    active_span = function() return nil end,
    set_active_span = noop,
    start_span = function() return noop_span end,
    create_span = function() return noop_span end,
    link_span = noop,
    process_span = function(processor)
      phases.check(phases.log)
      if type(processor) ~= "function" then error("processor must be a function", 2) end
    end,
    set_should_sample = noop,
    get_sampling_decision = function() return false end,
    init_spans = noop,
    get_spans = function() return {} end,
    get_root_span = function() return nil end,
    set_global_tracer = noop,
  }
  tracing.new = function() return tracing end
  return setmetatable(tracing, { __call = function() return tracing end })
end

return { new = new }
