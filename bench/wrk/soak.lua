-- wrk script for bench/soak.py: rank calls at a fixed pace per connection.
-- wrk ... -s bench/wrk/soak.lua URL -- rank KEY EXPERIMENT RUN DELAY_MS
-- Each connection waits DELAY_MS before each request, so the rate is about
-- connections * 1000 / (DELAY_MS + latency).
dofile("bench/wrk/tailor.lua")

local rank_init, rank_done = init, done

function init(args)
  rank_init(args)
  delay_ms = tonumber(args[5])
end

function delay()
  return delay_ms
end

function done(summary, latency, requests)
  rank_done(summary, latency, requests)
  -- Share of requests slower than 50 ms: bisect the percentile where latency crosses it.
  local over = 0.0
  if latency.max > 50000 then
    local lo, hi = 0.0, 100.0
    for _ = 1, 40 do
      local mid = (lo + hi) / 2
      if latency:percentile(mid) > 50000 then hi = mid else lo = mid end
    end
    over = 100.0 - hi
  end
  io.write(string.format('TAILOR_SOAK {"over_50ms_percent":%.5f}\n', over))
end
