-- wrk script for bench/soak.py: rank calls on a fixed-rate (open-loop) schedule.
-- wrk -t1 -cN ... -s bench/wrk/soak.lua URL -- rank|noop KEY EXPERIMENT RUN RATE
-- (noop: the rank body to /bench/noop, the baselines of bench/soak.py)
--
-- One schedule per wrk thread (RATE is per thread; bench/soak.py runs -t1): slot k is due
-- at start + k / RATE, whatever the server does. delay() claims the next slot and waits
-- until it is due; when every connection is busy no slot is claimed, the schedule falls
-- behind and the next requests go at once, late. Latency is measured from each request's
-- intended time (its slot's due time), as wrk2 does ("corrected latency"), so a stall
-- counts against every request it delayed, not only the few in flight (coordinated
-- omission). Latency from the actual send is reported next to it; tailor.lua's
-- TAILOR_RESULT line (wrk's own histogram) is kept.
--
-- Slots to requests: wrk calls delay() before every request (each connection's first
-- included), then, once that delay has passed, request() on the same connection, with
-- other connections' callbacks in between; Lua is not told which connection is calling.
-- So claimed slots wait in a FIFO and each request() takes the earliest. wrk's timers
-- have 1 ms resolution (it truncates the delay to whole ms) and two that fall due in the
-- same loop iteration may fire in either order, so two requests sent within the same
-- millisecond may swap due times: exact enough (the set of intended times is exactly
-- the schedule). A request's intended time is min(due, send): a send up to 1 ms early
-- (the truncation) is measured from the send, so corrected latency >= latency from send.
--
-- Responses to requests: exact, by event id. The rank answer carries the request's
-- "event_id" (RUN-THREAD-N, tailor.lua's rank_body); N keys the tables of intended and
-- send times (entries are deleted when answered). An answer without a known id (an error
-- body) is attributed to the oldest unanswered request, the largest latency it can have.
--
-- Latency from the send is kept too (the same as wrk's per-request latency; checked
-- against strace's timestamps of the writes and reads). wrk 4's own histogram (the wrk_*
-- fields of tailor.lua's TAILOR_RESULT) is not that: see tailor.lua.
dofile("bench/wrk/tailor.lua")  -- also defines now_us(), the monotonic clock

local LIMIT_US = 50000     -- the goal: no request over 50 ms
local BUCKET_US = 100      -- latency histograms: 0.1 ms buckets up to 10 s (wrk's
local BUCKETS = 100000     -- --timeout); bucket BUCKETS + 1 holds the rest

local rank_setup, rank_init, rank_request, rank_done = setup, init, request, done

-- Main Lua state: the threads, for done() (tailor.lua's list is local to it).
local soak_threads = {}

function setup(thread)
  rank_setup(thread)
  table.insert(soak_threads, thread)
end

-- Thread Lua state. Globals, so that done() can read them with thread:get().
function init(args)
  rank_init(args)
  local rate = tonumber(args[5])
  if (mode ~= "rank" and mode ~= "noop") or rate == nil or rate <= 0 then
    error("soak.lua: arguments are rank|noop KEY EXPERIMENT RUN RATE (requests per second)")
  end
  soak = {
    rate = rate, interval_us = 1e6 / rate,
    start_us = -1, last_us = -1,  -- the schedule's start; the latest callback
    claimed = 0,                  -- slots handed out (slot k is due at start + k * interval)
    sent = 0, answered = 0, non_2xx = 0, unmatched = 0,
    sent_late = 0, max_lag_us = 0,  -- sends over 1 ms after their due time; the largest lag
    over = 0, over_from_send = 0, max_us = 0, max_from_send_us = 0,
  }
  soak_hist, send_hist = {}, {}  -- latency from the intended time; from the send
  -- Per second of the schedule (by intended time): answers, the largest corrected latency,
  -- answers over 25 ms and over 50 ms; bench/soak.py lines stalls up with server events.
  -- Flat tables: wrk's thread:get() crashes copying nested ones.
  tl_answers, tl_max, tl_over25, tl_over50 = {}, {}, {}, {}
  for b = 1, BUCKETS + 1 do soak_hist[b], send_hist[b] = 0, 0 end
  soak_intended = {}  -- request number N -> intended send time (µs), until answered
  -- (tailor.lua's request() keeps the actual send times, in sent_at)
  due_queue, due_head, due_tail = {}, 1, 0  -- slots claimed by delay(), not yet sent
  oldest = 1          -- no unanswered request below this number (see response())
  prefix = run .. "-" .. tid .. "-"
  -- wrk calls request() once on the first thread's state before the run (to check the
  -- request); that call takes no slot.
  checking = (tid == 0)
end

local function claim(now)
  if soak.start_us < 0 then soak.start_us = now end
  local due = soak.start_us + soak.claimed * soak.interval_us
  soak.claimed = soak.claimed + 1
  return due
end

function delay()
  local now = now_us()
  soak.last_us = now
  local due = claim(now)
  due_tail = due_tail + 1
  due_queue[due_tail] = due
  local wait_ms = (due - now) / 1000
  return wait_ms > 0 and wait_ms or 0  -- wrk truncates to whole ms
end

function request()
  if checking then
    checking = false
    return rank_request()
  end
  local now = now_us()
  soak.last_us = now
  local due
  if due_head <= due_tail then
    due = due_queue[due_head]
    due_queue[due_head] = nil
    due_head = due_head + 1
  else
    due = claim(now)  -- no slot waiting: cannot happen (see above)
  end
  local lag = now - due  -- all connections were busy, or wrk's loop was late
  if lag > 1000 then soak.sent_late = soak.sent_late + 1 end
  if lag > soak.max_lag_us then soak.max_lag_us = lag end
  local req = rank_request()
  soak_intended[counter] = math.min(due, now)
  soak.sent = soak.sent + 1
  return req
end

function response(status, headers, body)
  local now = now_us()
  soak.last_us = now
  soak.answered = soak.answered + 1
  if status < 200 or status > 299 then soak.non_2xx = soak.non_2xx + 1 end
  local n
  local id = body:match('"event_id"%s*:%s*"([^"]*)"')
  if id and id:sub(1, #prefix) == prefix then n = tonumber(id:sub(#prefix + 1)) end
  if n == nil or soak_intended[n] == nil then
    soak.unmatched = soak.unmatched + 1
    while oldest <= counter and soak_intended[oldest] == nil do oldest = oldest + 1 end
    n = oldest
    if soak_intended[n] == nil then return end  -- nothing unanswered: cannot happen
  end
  local corrected, from_send = now - soak_intended[n], now - sent_at[n]
  soak_intended[n], sent_at[n] = nil, nil
  local b = math.min(math.floor(corrected / BUCKET_US) + 1, BUCKETS + 1)
  soak_hist[b] = soak_hist[b] + 1
  b = math.min(math.floor(from_send / BUCKET_US) + 1, BUCKETS + 1)
  send_hist[b] = send_hist[b] + 1
  if corrected > soak.max_us then soak.max_us = corrected end
  if from_send > soak.max_from_send_us then soak.max_from_send_us = from_send end
  if corrected > LIMIT_US then soak.over = soak.over + 1 end
  if from_send > LIMIT_US then soak.over_from_send = soak.over_from_send + 1 end
  local second = math.floor((now - corrected - soak.start_us) / 1e6)
  tl_answers[second] = (tl_answers[second] or 0) + 1
  if corrected > (tl_max[second] or 0) then tl_max[second] = corrected end
  if corrected > 25000 then tl_over25[second] = (tl_over25[second] or 0) + 1 end
  if corrected > LIMIT_US then tl_over50[second] = (tl_over50[second] or 0) + 1 end
end

-- Main Lua state again.

-- The per-second timeline, merged over threads: TAILOR_SOAK_TIMELINE {"start_us": the
-- schedule's start (CLOCK_MONOTONIC µs, the earliest thread's), "seconds": [[second,
-- answers, max µs, over 25 ms, over 50 ms], ...]}.
local function write_timeline()
  local merged, start = {}, nil
  for _, thread in ipairs(soak_threads) do
    local s = thread:get("soak")
    if s.start_us >= 0 and (start == nil or s.start_us < start) then start = s.start_us end
  end
  if start == nil then return end
  for _, thread in ipairs(soak_threads) do
    local s = thread:get("soak")
    local answers, max_us = thread:get("tl_answers"), thread:get("tl_max")
    local over25, over50 = thread:get("tl_over25"), thread:get("tl_over50")
    local shift = math.floor((s.start_us - start) / 1e6)
    for second, n in pairs(answers) do
      local m = merged[second + shift] or {0, 0, 0, 0}
      merged[second + shift] = {m[1] + n, math.max(m[2], max_us[second] or 0),
                                m[3] + (over25[second] or 0), m[4] + (over50[second] or 0)}
    end
  end
  local seconds = {}
  for second in pairs(merged) do table.insert(seconds, second) end
  table.sort(seconds)
  local parts = {}
  for i, second in ipairs(seconds) do
    local c = merged[second]
    parts[i] = string.format("[%d,%d,%d,%d,%d]", second, c[1], math.floor(c[2]), c[3], c[4])
  end
  io.write(string.format('TAILOR_SOAK_TIMELINE {"start_us":%d,"seconds":[%s]}\n',
                         math.floor(start), table.concat(parts, ",")))
end

function done(summary, latency, requests)
  rank_done(summary, latency, requests)
  write_timeline()
  local hist, shist = {}, {}
  for b = 1, BUCKETS + 1 do hist[b], shist[b] = 0, 0 end
  local t = {rate = 0, scheduled = 0, sent = 0, answered = 0, non_2xx = 0, unmatched = 0,
             over = 0, over_from_send = 0, max_us = 0, max_from_send_us = 0,
             late_unanswered = 0, late_unsent = 0, unanswered = 0, seconds = 0,
             sent_late = 0, max_lag_us = 0}
  for _, thread in ipairs(soak_threads) do
    local s = thread:get("soak")
    if s.start_us >= 0 then
      -- The schedule ran from its start to the thread's latest callback (wrk stops each
      -- thread's loop within 0.1 s of the end of the run; a stall right at the end, with
      -- no callback at all, would be cut off).
      local finish = s.last_us
      local seconds = (finish - s.start_us) / 1e6
      -- Known to be over the limit though not answered: slots due over 50 ms before the
      -- end and never sent (slots are sent in order), and requests sent whose intended time
      -- is over 50 ms before the end.
      local due_before = math.floor((finish - LIMIT_US - s.start_us) / s.interval_us) + 1
      t.late_unsent = t.late_unsent + math.max(0, due_before - s.sent)
      for _, intended in pairs(thread:get("soak_intended")) do
        t.unanswered = t.unanswered + 1
        if finish - intended > LIMIT_US then t.late_unanswered = t.late_unanswered + 1 end
      end
      t.scheduled = t.scheduled + math.floor((finish - s.start_us) / s.interval_us) + 1
      t.seconds = math.max(t.seconds, seconds)
      t.rate = t.rate + s.rate
      for _, k in ipairs({"sent", "answered", "non_2xx", "unmatched", "over", "over_from_send",
                          "sent_late"}) do
        t[k] = t[k] + s[k]
      end
      t.max_lag_us = math.max(t.max_lag_us, s.max_lag_us)
      t.max_us = math.max(t.max_us, s.max_us)
      t.max_from_send_us = math.max(t.max_from_send_us, s.max_from_send_us)
      local h, sh = thread:get("soak_hist"), thread:get("send_hist")
      for b = 1, BUCKETS + 1 do hist[b], shist[b] = hist[b] + h[b], shist[b] + sh[b] end
    end
  end
  local function p(x)
    return math.floor(histogram_percentile(hist, BUCKETS + 1, BUCKET_US, t.answered,
                                           t.max_us, x))
  end
  local function q(x)
    return math.floor(histogram_percentile(shist, BUCKETS + 1, BUCKET_US, t.answered,
                                           t.max_from_send_us, x))
  end
  io.write(string.format(
    'TAILOR_SOAK {"target_rate":%.3f,"achieved_rate":%.3f,"schedule_seconds":%.3f,' ..
    '"scheduled":%d,"sent":%d,"answered":%d,"unanswered":%d,"non_2xx":%d,"unmatched":%d,' ..
    '"corrected_p50_us":%d,"corrected_p99_us":%d,"corrected_p999_us":%d,' ..
    '"corrected_max_us":%d,"over_50ms_corrected":%d,"over_50ms_answered":%d,' ..
    '"late_unanswered":%d,"late_unsent":%d,"send_p50_us":%d,"send_p99_us":%d,' ..
    '"send_p999_us":%d,"send_max_us":%d,"over_50ms_send":%d,"sent_late_1ms":%d,' ..
    '"max_send_lag_us":%d}\n',
    t.rate, t.seconds > 0 and t.sent / t.seconds or 0, t.seconds,
    t.scheduled, t.sent, t.answered, t.unanswered, t.non_2xx, t.unmatched,
    p(50), p(99), p(99.9), math.floor(t.max_us), t.over + t.late_unanswered + t.late_unsent,
    t.over, t.late_unanswered, t.late_unsent, q(50), q(99), q(99.9),
    math.floor(t.max_from_send_us), t.over_from_send, t.sent_late, math.floor(t.max_lag_us)))
end
