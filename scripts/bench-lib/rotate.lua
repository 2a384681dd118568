-- wrk script used for every benchmark run (warm and cold alike, so the load generator does the
-- same work in both): each request carries the next token of a file (one token a line), round
-- robin. Warm runs give a file with one token; cold runs a file with more tokens than any cache
-- holds, so a token comes back only after the caches have evicted it.
--   wrk -t1 -c16 -d5s -s rotate.lua http://127.0.0.1:PORT/api/hello -- TOKENS_FILE [START]
-- START (default 0): tokens to skip first, so that a later run against the same Envoy goes on
-- where the previous one stopped instead of replaying the tokens its cache still holds.
-- done() prints one line "BENCH {json}" (latencies in microseconds).
local tokens = {}
local i = 0

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then
      tokens[#tokens + 1] = "Bearer " .. line
    end
  end
  if #tokens == 0 then
    error("no tokens in " .. tostring(args[1]))
  end
  i = (tonumber(args[2]) or 0) % #tokens
end

function request()
  i = i + 1
  if i > #tokens then
    i = 1
  end
  return wrk.format("GET", wrk.path, { ["Authorization"] = tokens[i] })
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"timeout":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
