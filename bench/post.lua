-- wrk script: POST pre-built JSON bodies (one per line of $BENCH_BODIES) in rotation,
-- with the API key from $BENCH_API_KEY, and print a machine-readable summary.
local bodies = {}
local requests = {}
local counter = 0

function init(args)
  local path = os.getenv("BENCH_BODIES")
  local key = os.getenv("BENCH_API_KEY")
  local file = assert(io.open(path, "r"))
  for line in file:lines() do
    if #line > 0 then
      table.insert(bodies, line)
    end
  end
  file:close()
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["X-API-Key"] = key
  -- Formatted once per thread, so the load generator spends nothing per request on it.
  for _, body in ipairs(bodies) do
    table.insert(requests, wrk.format("POST", nil, headers, body))
  end
end

function request()
  counter = counter + 1
  return requests[(counter % #requests) + 1]
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "BENCH_JSON {\"requests\": %d, \"duration_us\": %d, \"p50_us\": %d, \"p90_us\": %d, " ..
    "\"p99_us\": %d, \"p999_us\": %d, \"max_us\": %d, \"connect_errors\": %d, " ..
    "\"read_errors\": %d, \"write_errors\": %d, \"status_errors\": %d, \"timeouts\": %d}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, errors.connect,
    errors.read, errors.write, errors.status, errors.timeout))
end
