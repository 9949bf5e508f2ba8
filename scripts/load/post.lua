-- wrk script of the load scenarios (tests/it/load.rs): POST one AdmissionReview, over and
-- over, on keep-alive connections, as fast as the answers come back (closed loop).
--
--   LOAD_BODY=review.json wrk --latency -s post.lua URL
--
-- done() prints one machine-readable line for tests/it/load.rs:
--   WRK_RESULT requests=N duration_us=N errors=N non2xx=N p50_us=N p90_us=N p99_us=N p999_us=N max_us=N

local path = os.getenv("LOAD_BODY")
if path == nil or path == "" then
   error("LOAD_BODY must name the AdmissionReview JSON file")
end
local f = assert(io.open(path, "rb"))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "WRK_RESULT requests=%d duration_us=%d errors=%d non2xx=%d p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d\n",
      summary.requests, summary.duration,
      e.connect + e.read + e.write + e.timeout, e.status,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max))
end
