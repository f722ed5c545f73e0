-- wrk script for bench/rank.py: distinct event ids, rank-only / 1:1 rank+reward / no-op.
-- wrk ... -s bench/wrk/tailor.lua URL -- MODE KEY EXPERIMENT RUN [PRE_RUN PRE_COUNT]
--   MODE: noop | noop-small | rank | mix. RUN prefixes this cell's event ids (RUN-THREAD-N).
--   noop: the very body rank gets (context and 10 actions), to the no-op endpoint;
--   noop-small: only the event id and context (the ceiling used before 2026-11-22).
--   mix: every 2nd request is a reward for a decision ranked earlier: event ids
--   PRE_RUN-0-2 .. PRE_RUN-0-(PRE_COUNT+1), ranked by a previous single-thread cell.
--
-- Latency is measured here, per request, from its send to its answer (TAILOR_RESULT's
-- client_* fields). wrk 4's own histogram is not that: after the run, stats_correct()
-- adds synthetic samples n - i, n - 2i, ... for every latency n >= 2i, where i = duration
-- / (requests / connections), its guess at coordinated omission in an open-loop world;
-- its percentiles are kept as wrk_* for comparison. Every answer carries an event id:
-- rank and the no-op echo the request's (RUN-THREAD-N), a reward its target's, which
-- matches the answer to its send time; an answer that matches nothing is counted.
local threads = {}

local ffi = require("ffi")
ffi.cdef [[
struct tailor_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clock_id, struct tailor_timespec *tp);
]]
local timespec = ffi.new("struct tailor_timespec")

-- Monotonic microseconds (global: bench/wrk/soak.lua uses it too).
function now_us()
  ffi.C.clock_gettime(1, timespec)  -- CLOCK_MONOTONIC
  return tonumber(timespec.tv_sec) * 1e6 + tonumber(timespec.tv_nsec) / 1e3
end

local LATENCY_BUCKET_US = 20       -- from-send latency histogram: 20 µs buckets to 2 s,
local LATENCY_BUCKETS = 100000     -- the last one holding the rest (exact max kept apart)

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local segments = {"new", "returning", "loyal", "churn-risk"}
local countries = {"DE", "FR", "US", "GB", "NL", "ES", "IT", "PL"}
local devices = {"mobile", "desktop", "tablet"}
local categories = {"shoes", "bags", "hats", "coats", "socks", "belts", "shirts", "jeans",
                    "watches", "scarves"}

local function context_json(i)
  return string.format(
    '{"user_id":"u-%d","user":{"segment":"%s","country":"%s","device":"%s",' ..
    '"tenure_days":%d,"orders":%d},"page":{"type":"home","hour":%d,"weekday":%d},' ..
    '"interests":["%s","%s"],"returning":%s}',
    i * 7919 % 50000, segments[i % 4 + 1], countries[i % 8 + 1], devices[i % 3 + 1],
    i * 13 % 900, i % 17, i % 24, i % 7, categories[i % 10 + 1], categories[(i + 3) % 10 + 1],
    (i % 2 == 0) and "true" or "false")
end

local function actions_json()
  local parts = {}
  for a = 1, 10 do
    parts[a] = string.format(
      '{"id":"hero-%d","features":{"category":"%s","price":%d.5,"brand":"b%d",' ..
      '"tags":["%s","sale"],"discount":%s}}',
      a, categories[a], 10 + a * 7, a % 4, categories[(a + 5) % 10 + 1],
      (a % 3 == 0) and "true" or "false")
  end
  return "[" .. table.concat(parts, ",") .. "]"
end

function init(args)
  mode, key, experiment, run = args[1], args[2], args[3], args[4]
  pre_run, pre_count = args[5], tonumber(args[6] or "0")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. key
  rank_path = "/v1/experiments/" .. experiment .. "/rank"
  contexts = {}
  for i = 1, 256 do contexts[i] = context_json(i) end
  actions = actions_json()
  counter = 0
  prefix = run .. "-" .. tid .. "-"
  sent_at = {}         -- request number -> send time (µs), until answered
  reward_sent = {}     -- target event id -> list of send times of rewards in flight
  client = {answered = 0, unmatched = 0, max_us = 0}
  client_hist = {}
  for b = 1, LATENCY_BUCKETS do client_hist[b] = 0 end
  if mode == "mix" and (pre_count == nil or pre_count < 1) then
    error("mix needs PRE_RUN and PRE_COUNT")
  end
end

local function rank_body(n)
  return '{"event_id":"' .. prefix .. n .. '","context":' ..
    contexts[n % 256 + 1] .. ',"actions":' .. actions .. "}"
end

local function rank_request(n)
  return wrk.format(nil, rank_path, nil, rank_body(n))
end

local function reward_target(n)
  -- +2: wrk calls request() once before the run, so id 1 is never sent.
  return pre_run .. "-0-" .. ((n * 7 + tid * 104729) % pre_count + 2)
end

local function reward_request(target, n)
  local body = '{"type":"click","value":1.0,"idempotency_key":"' .. run .. "-" .. tid ..
    "-" .. n .. '"}'
  return wrk.format(nil, "/v1/events/" .. target .. "/rewards", nil, body)
end

-- The next request, and the event id its answer will carry when that is not the
-- request's own (a reward answers with its target's).
local function next_request()
  counter = counter + 1
  if mode == "noop" then
    return wrk.format(nil, "/bench/noop", nil, rank_body(counter))
  elseif mode == "noop-small" then
    return wrk.format(nil, "/bench/noop", nil, '{"event_id":"' .. prefix .. counter ..
      '","context":' .. contexts[counter % 256 + 1] .. "}")
  elseif mode == "mix" and counter % 2 == 0 then
    local target = reward_target(counter)
    return reward_request(target, counter), target
  end
  return rank_request(counter)
end

-- wrk calls request() just before it writes each request.
function request()
  local req, target = next_request()
  if target == nil then
    sent_at[counter] = now_us()
  else
    local flying = reward_sent[target]
    if flying == nil then
      flying = {}
      reward_sent[target] = flying
    end
    flying[#flying + 1] = now_us()
  end
  return req
end

function response(status, headers, body)
  local now = now_us()
  local sent
  local id = body:match('"event_id"%s*:%s*"([^"]*)"')
  if id and id:sub(1, #prefix) == prefix then
    local n = tonumber(id:sub(#prefix + 1))
    sent = n and sent_at[n]
    if sent then sent_at[n] = nil end
  elseif id and reward_sent[id] then
    sent = table.remove(reward_sent[id], 1)
    if #reward_sent[id] == 0 then reward_sent[id] = nil end
  end
  if sent == nil then
    client.unmatched = client.unmatched + 1
    return
  end
  local us = now - sent
  client.answered = client.answered + 1
  if us > client.max_us then client.max_us = us end
  local b = math.min(math.floor(us / LATENCY_BUCKET_US) + 1, LATENCY_BUCKETS)
  client_hist[b] = client_hist[b] + 1
end

-- The p-th percentile of a histogram of `count` latencies in buckets of `bucket_us`
-- (bucket b holds [(b - 1) * bucket_us, b * bucket_us); bucket `last` holds the rest):
-- the upper edge of its bucket, at most `max_us`. Global: bench/wrk/soak.lua uses it too.
function histogram_percentile(hist, last, bucket_us, count, max_us, p)
  if count == 0 then return 0 end
  local rank, total = math.max(1, math.ceil(p / 100 * count)), 0
  for b = 1, last - 1 do
    total = total + hist[b]
    if total >= rank then return math.min(b * bucket_us, max_us) end
  end
  return max_us
end

function done(summary, latency, requests)
  local hist, answered, unmatched, max_us = {}, 0, 0, 0
  for b = 1, LATENCY_BUCKETS do hist[b] = 0 end
  for _, thread in ipairs(threads) do
    local c = thread:get("client")
    -- bench/wrk/soak.lua answers with its own response(): nothing was recorded here.
    if c and c.answered > 0 then
      answered, unmatched = answered + c.answered, unmatched + c.unmatched
      max_us = math.max(max_us, c.max_us)
      local h = thread:get("client_hist")
      for b = 1, LATENCY_BUCKETS do hist[b] = hist[b] + h[b] end
    end
  end
  local function p(x)
    return math.floor(histogram_percentile(hist, LATENCY_BUCKETS, LATENCY_BUCKET_US, answered,
                                           max_us, x))
  end
  local e = summary.errors
  io.write(string.format(
    'TAILOR_RESULT {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,' ..
    '"timeouts":%d,"client_answered":%d,"client_unmatched":%d,"client_p50_us":%d,' ..
    '"client_p99_us":%d,"client_p999_us":%d,"client_max_us":%d,"wrk_p50_us":%d,' ..
    '"wrk_p99_us":%d,"wrk_p999_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write, e.timeout,
    answered, unmatched, p(50), p(99), p(99.9), math.floor(max_us),
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max,
    latency.mean))
end
