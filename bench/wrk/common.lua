-- Shared wrk hooks for the realtime-token-proxy benchmark.
--
-- Load it first from a scenario script:
--   local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
--   dofile(here .. "common.lua")
--
-- Per thread it counts responses by HTTP status, 2xx responses whose body
-- carries a client secret ("value"), BENCH_REJECT_STATUS (default 403)
-- responses whose body names BENCH_REJECT_CODE (default "policy_violation"),
-- and requests issued per kind ("ok" or "reject", for scripts that call
-- bench_issue()).  done() merges the threads
-- and prints ONE line to stdout:
--   BENCH_JSON {"requests":...,"latency_us":{"p50":...,"p99":...},"statuses":{...},...}
-- which bench/run.py parses.  Latencies are in microseconds, as wrk gives them.

statuses = {}
minted = 0
policy_rejected = 0
issued = { ok = 0, reject = 0 }

local reject_status = tonumber(os.getenv("BENCH_REJECT_STATUS") or "") or 403
local reject_code = os.getenv("BENCH_REJECT_CODE") or "policy_violation"

function bench_auth_headers(headers)
   headers["Content-Type"] = "application/json"
   local key = os.getenv("BENCH_API_KEY")
   if key and key ~= "" then
      headers["Authorization"] = "Bearer " .. key
   end
   return headers
end

function bench_issue(kind)
   issued[kind] = (issued[kind] or 0) + 1
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if status >= 200 and status < 300 then
      if body and body:find('"value"', 1, true) then
         minted = minted + 1
      end
   elseif status == reject_status and body
         and (reject_code == "" or body:find(reject_code, 1, true)) then
      policy_rejected = policy_rejected + 1
   end
end

local threads = {}

function setup(thread)
   thread:set("thread_id", #threads)
   table.insert(threads, thread)
end

local function encode(value)
   local kind = type(value)
   if kind == "table" then
      local parts = {}
      for k, v in pairs(value) do
         parts[#parts + 1] = string.format("%q:%s", tostring(k), encode(v))
      end
      return "{" .. table.concat(parts, ",") .. "}"
   elseif kind == "number" then
      if value ~= value or value == math.huge or value == -math.huge then
         return "null"
      end
      return string.format("%.17g", value)
   elseif kind == "string" then
      return string.format("%q", value)
   elseif kind == "boolean" then
      return tostring(value)
   end
   return "null"
end

function done(summary, latency, requests)
   local merged_statuses = {}
   local merged_issued = { ok = 0, reject = 0 }
   local merged_minted = 0
   local merged_rejected = 0
   for _, thread in ipairs(threads) do
      for status, n in pairs(thread:get("statuses") or {}) do
         local key = tostring(status)
         merged_statuses[key] = (merged_statuses[key] or 0) + n
      end
      for kind, n in pairs(thread:get("issued") or {}) do
         merged_issued[kind] = (merged_issued[kind] or 0) + n
      end
      merged_minted = merged_minted + (thread:get("minted") or 0)
      merged_rejected = merged_rejected + (thread:get("policy_rejected") or 0)
   end
   local out = {
      requests = summary.requests,
      duration_us = summary.duration,
      bytes = summary.bytes,
      errors = {
         connect = summary.errors.connect,
         read = summary.errors.read,
         write = summary.errors.write,
         status = summary.errors.status,
         timeout = summary.errors.timeout,
      },
      latency_us = {
         min = latency.min,
         max = latency.max,
         mean = latency.mean,
         stdev = latency.stdev,
         p50 = latency:percentile(50),
         p90 = latency:percentile(90),
         p99 = latency:percentile(99),
         p999 = latency:percentile(99.9),
      },
      statuses = merged_statuses,
      minted = merged_minted,
      policy_rejected = merged_rejected,
      issued = merged_issued,
      threads = #threads,
   }
   io.write("BENCH_JSON ", encode(out), "\n")
end
