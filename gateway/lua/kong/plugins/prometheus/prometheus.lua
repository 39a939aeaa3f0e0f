-- The metrics library of Kong 3.9's bundled prometheus plugin (kong/plugins/prometheus/prometheus.lua,
-- Kong's copy of nginx-lua-prometheus), written again for the local gateway: the same registration
-- API, the same keys in the shared dict and the same text output, so that code which registers its
-- own metrics on Kong's registry and the tests that scrape it see what they would see in Kong.
--
-- How samples are kept (as in Kong):
-- * each sample is one shared-dict key, its full name `name{l1="v1",l2="v2"}` with the labels in the
--   order they were declared; a histogram keeps `name_count{...}`, `name_sum{...}` and one
--   `name_bucket{...,le="<bound>"}` per bucket, the bound zero-padded so that the keys sort in
--   numeric order as strings, the last one written "Inf" so that it sorts after the digits;
-- * counters and histograms are added up in the worker and flushed into the dict every second and
--   before a scrape; gauges are written to the dict at once, or kept in the worker (LOCAL_STORAGE);
-- * a scrape sorts every key as a string, writes `# HELP` and `# TYPE` before the first sample of a
--   metric, turns the padded bounds back into plain numbers and "Inf" into "+Inf", and puts the
--   prefix (Kong: "kong_") in front of every name.
-- Label values: non-strings pass through tostring; a string is cut before its first invalid UTF-8
-- byte and gets `\` and `"` escaped (newlines are not escaped, as in Kong).
local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local tonumber = tonumber
local setmetatable = setmetatable
local byte = string.byte
local sub = string.sub
local find = string.find
local gsub = string.gsub
local match = string.match
local fmt = string.format
local concat = table.concat
local sort = table.sort

local TYPE_COUNTER = 1
local TYPE_GAUGE = 2
local TYPE_HISTOGRAM = 4
local TYPE_NAMES = { [TYPE_COUNTER] = "counter", [TYPE_GAUGE] = "gauge", [TYPE_HISTOGRAM] = "histogram" }

local ERROR_METRIC_NAME = "nginx_metric_errors_total"
local SYNC_INTERVAL = 1
-- seconds, 5 ms to 10 s: the library's default when a histogram is registered without buckets
local DEFAULT_BUCKETS = { 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 1.5,
                         2, 3, 4, 5, 10 }
-- the scrape writes this many lines per call of the output function
local LINES_PER_WRITE = 100

local Prometheus = {}
local mt = { __index = Prometheus }

Prometheus.LOCAL_STORAGE = true

-- Length of the longest prefix of `s` that is valid UTF-8 (no overlongs, surrogates or code points
-- above U+10FFFF).
local function valid_utf8_length(s)
  local i, n = 1, #s
  while i <= n do
    local c = byte(s, i)
    local extra, lo, hi = 0, 0x80, 0xBF
    if c >= 0x80 then
      if c >= 0xC2 and c <= 0xDF then
        extra = 1
      elseif c >= 0xE0 and c <= 0xEF then
        extra = 2
        if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F end
      elseif c >= 0xF0 and c <= 0xF4 then
        extra = 3
        if c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end
      else
        return i - 1
      end
      if i + extra > n then
        return i - 1
      end
      for j = 1, extra do
        local b = byte(s, i + j)
        local blo, bhi = 0x80, 0xBF
        if j == 1 then blo, bhi = lo, hi end
        if b < blo or b > bhi then
          return i - 1
        end
      end
    end
    i = i + extra + 1
  end
  return n
end

local function label_value(v)
  if type(v) ~= "string" then
    return tostring(v)
  end
  local n = valid_utf8_length(v)
  if n < #v then
    v = sub(v, 1, n)
  end
  if find(v, "\\", 1, true) then
    v = gsub(v, "\\", "\\\\")
  end
  if find(v, '"', 1, true) then
    v = gsub(v, '"', '\\"')
  end
  return v
end

-- `{k1="v1",k2="v2"}`, or "" for a metric without labels
local function labels_text(label_names, label_values)
  if not label_names then
    return ""
  end
  local parts = {}
  for i, name in ipairs(label_names) do
    parts[i] = name .. '="' .. label_value(label_values[i]) .. '"'
  end
  return "{" .. concat(parts, ",") .. "}"
end

-- sprintf format that pads every bound of `buckets` to the same number of digits before and after
-- the point, so that the bounds sort as strings in numeric order
local function bucket_format(buckets)
  local order, precision = 1, 1
  for _, b in ipairs(buckets) do
    if type(b) ~= "number" then
      error("bucket boundaries should be numeric", 3)
    end
    local text = gsub(fmt("%f", b), "0*$", "")
    local dot = find(text, ".", 1, true)
    if dot - 1 > order then order = dot - 1 end
    if #text - dot > precision then precision = #text - dot end
  end
  return "%0" .. (order + precision + 1) .. "." .. precision .. "f"
end

-- The key(s) of one label combination, cached in a tree of label values.
-- Counter and gauge: the key. Histogram: { count key, sum key, bucket keys..., Inf bucket key }.
local LEAF = {}
local function keys_for(metric, label_values)
  local count = label_values and #label_values or 0
  if count ~= metric.label_count or (metric.label_count > 0 and label_values[1] == nil) then
    return nil, fmt("inconsistent labels count, expected %d, got %d", metric.label_count, count)
  end
  local node = metric.lookup
  for i = 1, metric.label_count do
    local v = label_values[i]
    local child = node[v]
    if not child then
      child = {}
      node[v] = child
    end
    node = child
  end
  local keys = node[LEAF]
  if keys then
    return keys
  end
  if metric.typ == TYPE_HISTOGRAM then
    local labels = labels_text(metric.label_names, label_values)
    keys = { metric.name .. "_count" .. labels, metric.name .. "_sum" .. labels }
    local prefix
    if metric.label_count > 0 then
      prefix = metric.name .. "_bucket" .. sub(labels, 1, -2) .. ","
    else
      prefix = metric.name .. "_bucket{"
    end
    for i, b in ipairs(metric.buckets) do
      keys[i + 2] = prefix .. 'le="' .. fmt(metric.bucket_format, b) .. '"}'
    end
    keys[metric.bucket_count + 3] = prefix .. 'le="Inf"}'
  else
    keys = metric.name .. labels_text(metric.label_names, label_values)
  end
  node[LEAF] = keys
  return keys
end

-- The per-worker sums of counter and histogram increments, flushed into the dict.
local function new_worker_counter(self, interval)
  local pending = {}
  local counter = {}
  function counter.incr(key, step)
    pending[key] = (pending[key] or 0) + step
  end
  function counter.sync()
    for key, step in pairs(pending) do
      pending[key] = nil
      local _, err = self.dict:incr(key, step, 0)
      if err then
        self:log_error_kv(key, step, err)
      end
    end
  end
  local ok, err = ngx.timer.every(interval, function(premature)
    if not premature then
      counter.sync()
    end
  end)
  if not ok then
    return nil, "cannot start the counter sync timer: " .. tostring(err)
  end
  return counter
end

local ERR_NOT_INITIALIZED = "counter not initialized! Have you called Prometheus:init() from the " ..
                            "init_worker_by_lua_block nginx phase?"

local function worker_counter(metric)
  local c = metric.parent._counter
  if not c then
    metric.parent:log_error(ERR_NOT_INITIALIZED)
  end
  return c
end

-- The key(s) of a sample, or nil once the reason is logged and counted.
local function sample_keys(self, value, label_values, value_required)
  if value_required and not value then
    self.parent:log_error("No value passed for " .. self.name)
    return nil
  end
  local keys, err = keys_for(self, label_values)
  if not keys then
    self.parent:log_error(err)
  end
  return keys
end

-- a gauge's write: into the worker (LOCAL_STORAGE) or the dict (`op`: "incr" or "safe_set")
local function write_gauge(self, key, value, op)
  if self.local_storage then
    local all = self.parent.local_metrics
    all[key] = op == "incr" and (all[key] or 0) + value or value
    return
  end
  local dict = self.parent.dict
  local _, err
  if op == "incr" then
    _, err = dict:incr(key, value, 0)
  else
    _, err = dict:safe_set(key, value)
  end
  if err then
    self.parent:log_error_kv(key, value, err)
  end
end

local function inc_counter(self, value, label_values)
  if value and value < 0 then
    self.parent:log_error_kv(self.name, value, "Value should not be negative")
    return
  end
  local key = sample_keys(self, value, label_values, false)
  local c = key and worker_counter(self)
  if c then
    c.incr(key, value or 1)
  end
end

local function inc_gauge(self, value, label_values)
  local key = sample_keys(self, value, label_values, false)
  if key then
    write_gauge(self, key, value or 1, "incr")
  end
end

local function set_gauge(self, value, label_values)
  local key = sample_keys(self, value, label_values, true)
  if key then
    write_gauge(self, key, value, "safe_set")
  end
end

local function observe(self, value, label_values)
  local keys = sample_keys(self, value, label_values, true)
  local c = keys and worker_counter(self)
  if not c then
    return
  end
  c.incr(keys[1], 1)
  c.incr(keys[2], value)
  for i = 1, self.bucket_count do
    if value <= self.buckets[i] then
      c.incr(keys[i + 2], 1)
    end
  end
  c.incr(keys[self.bucket_count + 3], 1)
end

local function del(self, label_values)
  local keys = sample_keys(self, nil, label_values, false)
  if not keys then
    return
  end
  -- flush this worker first, or a pending increment would bring the sample back
  if self.typ ~= TYPE_GAUGE and self.parent._counter then
    self.parent._counter.sync()
  end
  if type(keys) ~= "table" then
    keys = { keys }
  end
  for _, key in ipairs(keys) do
    if self.local_storage then
      self.parent.local_metrics[key] = nil
    else
      self.parent.dict:delete(key)
    end
  end
end

-- deletes every sample of the metric
local function reset(self)
  if self.typ ~= TYPE_GAUGE and self.parent._counter then
    self.parent._counter.sync()
  end
  local prefixes
  if self.typ == TYPE_HISTOGRAM then
    prefixes = { self.name .. "_count", self.name .. "_sum", self.name .. "_bucket{" }
  else
    prefixes = { self.name .. "{" }
  end
  local function ours(key)
    if key == self.name then return true end
    for _, p in ipairs(prefixes) do
      if sub(key, 1, #p) == p then
        local rest = sub(key, #p + 1, #p + 1)
        -- "name_count" / "name_count{...}", not "name_countries"
        if sub(p, -1) == "{" or rest == "" or rest == "{" then
          return true
        end
      end
    end
    return false
  end
  if self.local_storage then
    for key in pairs(self.parent.local_metrics) do
      if ours(key) then self.parent.local_metrics[key] = nil end
    end
  else
    for _, key in ipairs(self.parent.dict:get_keys(0)) do
      if ours(key) then self.parent.dict:delete(key) end
    end
  end
  self.lookup = {}
end

local function check_names(name, label_names)
  if type(name) ~= "string" or not match(name, "^[a-zA-Z_:][a-zA-Z0-9_:]*$") then
    return "Metric name '" .. tostring(name) .. "' is invalid"
  end
  for _, label in ipairs(label_names or {}) do
    if label == "le" then
      return "Invalid label name 'le' in " .. name
    end
    if type(label) ~= "string" or not match(label, "^[a-zA-Z_][a-zA-Z0-9_]*$") then
      return "Metric '" .. name .. "' label name '" .. tostring(label) .. "' is invalid"
    end
  end
end

local function register(self, name, help, label_names, buckets, typ, local_storage)
  if not self.initialized then
    ngx.log(ngx.ERR, "Prometheus module has not been initialized")
    return
  end
  local err = check_names(name, label_names)
  if err then
    self:log_error(err)
    return
  end
  local base = gsub(gsub(gsub(name, "_bucket$", ""), "_count$", ""), "_sum$", "")
  local taken
  if typ == TYPE_HISTOGRAM then
    taken = self.registry[name] or self.registry[name .. "_count"] or self.registry[name .. "_sum"]
            or self.registry[name .. "_bucket"]
  else
    taken = self.registry[name] or self.registry[base]
  end
  if taken then
    self:log_error("Duplicate metric " .. name)
    return
  end
  if local_storage and typ ~= TYPE_GAUGE then
    ngx.log(ngx.ERR, "Cannot use local_storage metrics for non Gauge type")
    return
  end
  local metric = {
    name = name,
    help = help,
    typ = typ,
    label_names = label_names,
    label_count = label_names and #label_names or 0,
    lookup = {},
    parent = self,
    local_storage = local_storage,
    del = del,
    reset = reset,
  }
  if typ == TYPE_COUNTER then
    metric.inc = inc_counter
  elseif typ == TYPE_GAUGE then
    metric.inc = inc_gauge
    metric.set = set_gauge
  else
    metric.observe = observe
    metric.buckets = buckets or DEFAULT_BUCKETS
    metric.bucket_count = #metric.buckets
    metric.bucket_format = bucket_format(metric.buckets)
  end
  self.registry[name] = metric
  return metric
end

function Prometheus:counter(name, help, label_names)
  return register(self, name, help, label_names, nil, TYPE_COUNTER)
end

function Prometheus:gauge(name, help, label_names, local_storage)
  return register(self, name, help, label_names, nil, TYPE_GAUGE, local_storage)
end

function Prometheus:histogram(name, help, label_names, buckets)
  return register(self, name, help, label_names, buckets, TYPE_HISTOGRAM)
end

--- dict_name: the shared dict of every sample; prefix (or { prefix, error_metric_name,
-- sync_interval }): what the scrape writes before every name. Only in init, init_worker or a timer.
function Prometheus.init(dict_name, options)
  local phase = ngx.get_phase()
  if phase ~= "init" and phase ~= "init_worker" and phase ~= "timer" then
    error("Prometheus.init can only be called from init_by_lua_block, init_worker_by_lua_block or timer", 2)
  end
  dict_name = dict_name or "prometheus_metrics"
  local self = setmetatable({}, mt)
  self.dict_name = dict_name
  self.dict = ngx.shared[dict_name]
  if self.dict == nil then
    error("Dictionary '" .. dict_name .. "' does not seem to exist. " ..
          "Please define the dictionary using `lua_shared_dict`.", 2)
  end
  if type(options) == "table" then
    self.prefix = options.prefix or ""
    self.error_metric_name = options.error_metric_name or ERROR_METRIC_NAME
    self.sync_interval = options.sync_interval or SYNC_INTERVAL
  else
    self.prefix = options or ""
    self.error_metric_name = ERROR_METRIC_NAME
    self.sync_interval = SYNC_INTERVAL
  end
  self.registry = {}
  self.local_metrics = {}
  self.initialized = true
  self:counter(self.error_metric_name, "Number of nginx-lua-prometheus errors")
  self.dict:set(self.error_metric_name, 0)
  if phase == "init_worker" then
    self:init_worker(self.sync_interval)
  end
  return self
end

--- Starts this worker's counter (init_worker only).
function Prometheus:init_worker(sync_interval)
  if ngx.get_phase() ~= "init_worker" then
    error("Prometheus:init_worker can only be called in init_worker_by_lua_block", 2)
  end
  if self._counter then
    ngx.log(ngx.WARN, "init_worker() has been called twice. Please do not explicitly call init_worker. " ..
                      "Instead, call Prometheus:init() in the init_worker_by_lua_block")
    return
  end
  self.sync_interval = sync_interval or SYNC_INTERVAL
  local counter, err = new_worker_counter(self, self.sync_interval)
  if not counter then
    error(err, 2)
  end
  self._counter = counter
end

-- name of the metric a key belongs to ("m" for "m_bucket{...,le=...}", "m_count" for "m_count{...}")
local function metric_name_of(key)
  local brace = find(key, "{", 1, true)
  if not brace then
    return key
  end
  local bucket = find(key, "_bucket{", 1, true)
  if bucket and find(key, "le=", 1, true) then
    return sub(key, 1, bucket - 1)
  end
  return sub(key, 1, brace - 1)
end

-- the stored bucket bound back to what Prometheus reads: "0250.0" -> "250", "Inf" -> "+Inf"
local function exposed_key(key)
  local head, bound, tail = match(key, '^(.*[,{]le=")([^"]*)(".*)$')
  if not head then
    return key
  end
  if bound == "Inf" then
    return head .. "+Inf" .. tail
  end
  return head .. tostring(tonumber(bound)) .. tail
end

--- Writes every sample in the text format through write_fn (default ngx.print); with local_only,
-- only this worker's local gauges (Kong's output when no prometheus plugin is configured).
function Prometheus:metric_data(write_fn, local_only)
  if not self.initialized then
    ngx.log(ngx.ERR, "Prometheus module has not been initialized")
    return
  end
  write_fn = write_fn or ngx.print
  if self._counter then
    self._counter.sync()
  end
  local keys = local_only and {} or self.dict:get_keys(0)
  local n = #keys
  for key in pairs(self.local_metrics) do
    n = n + 1
    keys[n] = key
  end
  sort(keys)

  local lines, count = {}, 0
  local function put(line)
    count = count + 1
    lines[count] = line
    if count >= LINES_PER_WRITE then
      write_fn(concat(lines, "", 1, count))
      count = 0
    end
  end
  local seen = {}
  for i = 1, n do
    local key = keys[i]
    local is_local = true
    local value = self.local_metrics[key]
    local err
    if value == nil and not local_only then
      is_local = false
      value, err = self.dict:get(key)
    end
    if value == nil then
      self:log_error("Error getting '", key, "': ", err)
    else
      local name = metric_name_of(key)
      if not seen[name] then
        seen[name] = true
        local m = self.registry[name]
        if m then
          if m.help then
            put(fmt("# HELP %s%s %s\n", self.prefix, name, m.help))
          end
          put(fmt("# TYPE %s%s %s\n", self.prefix, name, TYPE_NAMES[m.typ]))
        end
      end
      if not is_local then
        key = exposed_key(key)
      end
      put(fmt("%s%s %s\n", self.prefix, key, value))
    end
  end
  if count > 0 then
    write_fn(concat(lines, "", 1, count))
  end
end

--- The scrape as a page: text/plain and every sample.
function Prometheus:collect()
  ngx.header["Content-Type"] = "text/plain"
  self:metric_data()
end

function Prometheus:log_error(...)
  ngx.log(ngx.ERR, ...)
  self.dict:incr(self.error_metric_name, 1, 0)
end

function Prometheus:log_error_kv(key, value, err)
  self:log_error("Error while setting '", key, "' to '", value, "': '", err, "'")
end

return Prometheus
