-- wrk script for bench/rank.py: distinct event ids, rank-only / 1:1 rank+reward / no-op.
-- wrk ... -s bench/wrk/tailor.lua URL -- MODE KEY EXPERIMENT RUN [PRE_RUN PRE_COUNT]
--   MODE: noop | noop-small | rank | mix. RUN prefixes this cell's event ids (RUN-THREAD-N).
--   noop: the very body rank gets (context and 10 actions), to the no-op endpoint;
--   noop-small: only the event id and context (the ceiling used before 2026-11-22).
--   mix: every 2nd request is a reward for a decision ranked earlier: event ids
--   PRE_RUN-0-2 .. PRE_RUN-0-(PRE_COUNT+1), ranked by a previous single-thread cell.
local threads = {}

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
  if mode == "mix" and (pre_count == nil or pre_count < 1) then
    error("mix needs PRE_RUN and PRE_COUNT")
  end
end

local function rank_body(n)
  return '{"event_id":"' .. run .. "-" .. tid .. "-" .. n .. '","context":' ..
    contexts[n % 256 + 1] .. ',"actions":' .. actions .. "}"
end

local function rank_request(n)
  return wrk.format(nil, rank_path, nil, rank_body(n))
end

local function reward_request(n)
  -- +2: wrk calls request() once before the run, so id 1 is never sent.
  local target = pre_run .. "-0-" .. ((n * 7 + tid * 104729) % pre_count + 2)
  local body = '{"type":"click","value":1.0,"idempotency_key":"' .. run .. "-" .. tid ..
    "-" .. n .. '"}'
  return wrk.format(nil, "/v1/events/" .. target .. "/rewards", nil, body)
end

function request()
  counter = counter + 1
  if mode == "noop" then
    return wrk.format(nil, "/bench/noop", nil, rank_body(counter))
  elseif mode == "noop-small" then
    return wrk.format(nil, "/bench/noop", nil, '{"event_id":"' .. run .. "-" .. counter ..
      '","context":' .. contexts[counter % 256 + 1] .. "}")
  elseif mode == "mix" and counter % 2 == 0 then
    return reward_request(counter)
  end
  return rank_request(counter)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'TAILOR_RESULT {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,' ..
    '"timeouts":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max,
    latency.mean))
end
