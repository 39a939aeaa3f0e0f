return {
  name = "fake-ai-proxy-stats",
  fields = { { config = { type = "record", fields = {
    { provider = { type = "string", default = "fake-ai-proxy" } },
    { model = { type = "string", default = "fake-model" } },
    { prompt_tokens = { type = "integer", default = 100 } },
    { completion_tokens = { type = "integer", default = 50 } },
    { llm_latency = { type = "integer", default = 1200 } },
  } } } },
}
