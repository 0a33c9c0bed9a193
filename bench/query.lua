-- wrk script of the query benchmark (bench/query.py):
--   wrk -t THREADS -c 16 -d 20s -s bench/query.lua http://127.0.0.1:PORT -- PATHS_FILE THREADS TAG
-- PATHS_FILE holds one request path per line; each wrk thread walks the list from its own
-- starting point, so the connections ask for different patients at any moment. "{n}" in a
-- path becomes TAG-thread-count, used by no other request of this run or (with a new TAG) of
-- any other. (Not a cache miss in a parameter the view does not declare: monitor_app keys its
-- cache by validated arguments only. bench/query.py's UNCACHED workload has a server whose
-- cache is down instead.)
-- done() prints one JSON line: latency percentiles in ms, counts, and X-Cache hits/misses.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

-- Globals, not locals: done() reads them from each thread's state with thread:get().
non2xx, hits, misses = 0, 0, 0

local paths = {}
local counter = 0
local tag = ""

function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then paths[#paths + 1] = line end
  end
  local thread_count = tonumber(args[2]) or 1
  counter = id * math.floor(#paths / thread_count)
  tag = (args[3] or "") .. "-" .. id .. "-"
end

function request()
  counter = counter + 1
  local path = paths[counter % #paths + 1]:gsub("{n}", tag .. counter)
  return wrk.format("GET", path)
end

function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
  local cache = headers["X-Cache"]
  if cache == "hit" then hits = hits + 1 elseif cache == "miss" then misses = misses + 1 end
end

function done(summary, latency, requests)
  local totals = {non2xx = 0, hits = 0, misses = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + (thread:get(name) or 0)
    end
  end
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_s": %.3f, "p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, ' ..
    '"max_ms": %.3f, "non2xx": %d, "socket_errors": %d, "timeouts": %d, ' ..
    '"cache_hits": %d, "cache_misses": %d}\n',
    summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3, totals.non2xx, errors.connect + errors.read + errors.write,
    errors.timeout, totals.hits, totals.misses))
end
