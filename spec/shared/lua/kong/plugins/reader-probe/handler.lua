-- Test fixture: counts, per request, the usage readers that were fed and the bytes fed to each,
-- by wrapping the shared reader's feed method, and logs them in the log phase as
-- "READER_PROBE <x-test-id> <json>". PRIORITY above every plugin under test, so its log runs first
-- (the body filters are all done by then).
local cjson = require("cjson.safe")
local stream_usage = require("kong.plugins.ai-gateway-shared.stream_usage")

local Probe = { PRIORITY = 100000, VERSION = "0.1.0" }

function Probe:init_worker()
  local proto = getmetatable(stream_usage.newUsageReader()).__index
  local feed = proto.feed
  proto.feed = function(reader, chunk, ...)
    local ctx = ngx.ctx
    local fed = ctx.reader_probe_fed
    if not fed then
      fed = { readers = {}, order = {} }
      ctx.reader_probe_fed = fed
    end
    if not fed.readers[reader] then
      fed.readers[reader] = { calls = 0, bytes = 0 }
      fed.order[#fed.order + 1] = reader
    end
    local r = fed.readers[reader]
    r.calls = r.calls + 1
    r.bytes = r.bytes + #chunk
    return feed(reader, chunk, ...)
  end
end

function Probe:log()
  local fed = ngx.ctx.reader_probe_fed
  local readers = {}
  if fed then
    for i, r in ipairs(fed.order) do readers[i] = fed.readers[r] end
  end
  local shared = kong.ctx.shared.ai_gateway_response_reader
  kong.log.notice("READER_PROBE ", kong.request.get_header("x-test-id") or "-", " ", cjson.encode({
    readers = #readers,
    bytes = readers[1] and readers[1].bytes or 0,
    feeder = shared and shared.feeder or cjson.null,
    status = kong.response.get_status(),
  }))
end

return Probe
