-- wrk script: replays pre-generated requests, one per line: METHOD \t PATH \t TOKEN \t BODY.
-- Every line is used once before any repeats (PoW payloads are single use).
-- Each request is formatted once, in init: wrk shares the machine's cores with the server and
-- Redis, so its per-request work must stay small (a PoW line is about 850 bytes to match).
local requests = {}
local index = 0

function init(args)
  for line in io.lines(os.getenv("BENCH_REQUESTS")) do
    local method, path, token, body = line:match("([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)")
    local headers = {["Content-Type"] = "application/json"}
    if token ~= "" then headers["Authorization"] = "Bearer " .. token end
    requests[#requests + 1] = wrk.format(method, path, headers, body)
  end
  index = tonumber(os.getenv("BENCH_OFFSET") or "0") % #requests
  -- The process's CPU time so far (os.clock counts every thread): done() reports the run's
  -- CPU without this set-up.
  io.write(string.format("BENCH init_cpu_s=%.6f\n", os.clock()))
end

function request()
  index = index + 1
  if index > #requests then index = 1 end
  return requests[index]
end

done = function(summary, latency, requests)
  local codes = {}
  io.write(string.format("BENCH errors connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
  io.write(string.format("BENCH rps=%.1f p50_ms=%.3f p99_ms=%.3f requests=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.requests))
  io.write(string.format("BENCH cpu_s=%.6f\n", os.clock()))
end
