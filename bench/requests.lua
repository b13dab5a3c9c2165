-- wrk script: replays pre-generated requests, one per line: METHOD \t PATH \t TOKEN \t BODY.
-- Every line is used once before any repeats (PoW payloads are single use).
local lines = {}
local index = 0

function init(args)
  for line in io.lines(os.getenv("BENCH_REQUESTS")) do
    lines[#lines + 1] = line
  end
  index = tonumber(os.getenv("BENCH_OFFSET") or "0") % #lines
end

function request()
  index = index + 1
  if index > #lines then index = 1 end
  local method, path, token, body = lines[index]:match("([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)")
  local headers = {["Content-Type"] = "application/json"}
  if token ~= "" then headers["Authorization"] = "Bearer " .. token end
  return wrk.format(method, path, headers, body)
end

done = function(summary, latency, requests)
  local codes = {}
  io.write(string.format("BENCH errors connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
  io.write(string.format("BENCH rps=%.1f p50_ms=%.3f p99_ms=%.3f requests=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.requests))
end
