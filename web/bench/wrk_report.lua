-- wrk script for `make bench`: prints the run as one JSON line and, for the counting endpoints,
-- writes every counter value seen in a 2xx response to a file (one per line) so the bench can
-- check that no number was handed out twice. Arguments after --: METHOD [VALUES_FILE]
local values = nil

function init(args)
  wrk.method = args[1] or "GET"
  if wrk.method == "POST" then
    wrk.headers["Content-Length"] = "0"
  end
  if args[2] then
    values = io.open(args[2], "w")
    values:setvbuf("line")
  end
end

function response(status, headers, body)
  if values and status >= 200 and status < 300 then
    local n = body:match("Counter: <strong>(%d+)") or body:match('"count":%s*(%d+)')
    if n then values:write(n, "\n") end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
