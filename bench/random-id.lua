-- wrk script: GET /v1/books/{id} with id uniformly random in 1..10000, the
-- books bench/run.sh loads. Used by bench/run.sh:
--   wrk -t2 -c64 -d15s --latency -s bench/random-id.lua http://127.0.0.1:PORT
-- At the end it prints one machine-readable line, "WRK_RESULT key=value ...",
-- with latencies in microseconds, for run.sh to parse.

local max_id = 10000
local next_thread = 1

function setup(thread)
  thread:set("thread_no", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  -- each thread has its own Lua state: seed each one differently
  math.randomseed(os.time() * 1000 + (thread_no or 0))
end

function request()
  return wrk.format("GET", "/v1/books/" .. math.random(1, max_id))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d " ..
    "mean_us=%.1f max_us=%d non2xx=%d connect_errors=%d read_errors=%d " ..
    "write_errors=%d timeouts=%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max, e.status, e.connect, e.read, e.write, e.timeout))
end
