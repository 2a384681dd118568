-- wrk script of the DPoP case (RFC 9449): each request carries `Authorization: DPoP <token>` and a
-- proof `DPoP: <proof>` from a file of lines "token<TAB>proof", in order, each line once: the
-- runner (scripts/bench-lib/bench.py) writes a new file before every run, with more lines than the
-- run sends, every proof new (its own jti). A run that reaches the end of the file starts over,
-- and the replayed proofs are refused (401): the runner fails then, reporting "wrapped".
--   wrk -t1 -c16 -d5s -s dpop.lua http://127.0.0.1:PORT/api/hello -- PROOFS_FILE
-- done() prints one line "BENCH {json}" (latencies in microseconds), as rotate.lua does.
local auth, proofs = {}, {}
local i = 0
local threads = {}
wrapped = 0 -- global: done() runs in the main Lua state and reads it through thread:get

function setup(thread)
  threads[#threads + 1] = thread
end

function init(args)
  for line in io.lines(args[1]) do
    local token, proof = line:match("^([^\t]+)\t([^\t]+)$")
    if token then
      auth[#auth + 1] = "DPoP " .. token
      proofs[#proofs + 1] = proof
    end
  end
  if #proofs == 0 then
    error("no token<TAB>proof lines in " .. tostring(args[1]))
  end
end

function request()
  i = i + 1
  if i > #proofs then
    i = 1
    wrapped = wrapped + 1
  end
  return wrk.format("GET", wrk.path, { ["Authorization"] = auth[i], ["DPoP"] = proofs[i] })
end

function done(summary, latency, requests)
  local e = summary.errors
  local w = 0
  for _, t in ipairs(threads) do
    w = w + (t:get("wrapped") or 0)
  end
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"timeout":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f,"wrapped":%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, w))
end
