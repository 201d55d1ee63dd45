-- wrk script: POST /v1/orders with {"book_id": random 1..100, "quantity":
-- random 1..5}, Content-Type: application/json; the 100 books are the ones
-- bench/orders.sh creates. Used by bench/orders.sh:
--   wrk -t2 -c64 -d15s --latency -s bench/create-order.lua http://127.0.0.1:PORT
-- Every answer's status is counted (wrk's own "Non-2xx" counts only >= 400),
-- and at the end it prints one machine-readable line, "WRK_RESULT key=value
-- ...", with latencies in microseconds, the exact number of answers outside
-- 200..299 (non2xx) and the count per status (statuses=201:1234,503:5), for
-- orders.sh to parse.

local max_book_id = 100
local max_quantity = 5
local headers = { ["Content-Type"] = "application/json" }
local threads = {}
local next_thread = 1

function setup(thread)
  thread:set("thread_no", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

function init(args)
  -- each thread has its own Lua state: seed each one differently
  math.randomseed(os.time() * 1000 + (thread_no or 0))
  statuses = {}
end

function request()
  local body = string.format('{"book_id": %d, "quantity": %d}',
    math.random(1, max_book_id), math.random(1, max_quantity))
  return wrk.format("POST", "/v1/orders", headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses") or {}) do
      total[status] = (total[status] or 0) + n
    end
  end
  local codes, non2xx = {}, 0
  for status, n in pairs(total) do
    table.insert(codes, status)
    if status < 200 or status > 299 then
      non2xx = non2xx + n
    end
  end
  table.sort(codes)
  local parts = {}
  for _, status in ipairs(codes) do
    table.insert(parts, status .. ":" .. total[status])
  end
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d " ..
    "mean_us=%.1f max_us=%d non2xx=%d connect_errors=%d read_errors=%d " ..
    "write_errors=%d timeouts=%d statuses=%s\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max, non2xx, e.connect, e.read, e.write, e.timeout,
    #parts > 0 and table.concat(parts, ",") or "none"))
end
