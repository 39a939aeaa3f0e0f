-- Stands in for Kong 3.9's ai-proxy with logging.log_statistics on, as far as analytics go: at
-- ai-proxy's PRIORITY (770) its log phase writes ai.proxy.meta and ai.proxy.usage with
-- kong.log.set_serialize_value's default mode "set", as serialize-analytics.lua does.
local FakeAiProxy = { PRIORITY = 770, VERSION = "0.1.0" }

function FakeAiProxy:log(conf)
  kong.log.set_serialize_value("ai.proxy.meta", {
    plugin_id = conf.__plugin_id,
    provider_name = conf.provider,
    request_model = conf.model,
    response_model = conf.model,
    llm_latency = conf.llm_latency,
  })
  kong.log.set_serialize_value("ai.proxy.usage", {
    prompt_tokens = conf.prompt_tokens,
    completion_tokens = conf.completion_tokens,
    total_tokens = conf.prompt_tokens + conf.completion_tokens,
    time_per_token = math.floor(conf.llm_latency / conf.completion_tokens),
    cost = 0,
  })
end

return FakeAiProxy
