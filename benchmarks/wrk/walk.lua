-- wrk script for benchmarks/bench_http.py: walk through prepared requests as a reverse proxy would send
-- them (each with its own X-Forwarded-For client address), count every answer.
--
--   wrk -t1 -c32 -d10s -s benchmarks/wrk/walk.lua http://127.0.0.1:PORT -- FILE METHOD MODE THREADS RECYCLE XFF
--
-- FILE holds one request a line: the path, a tab, and the body (empty for GET). THREADS repeats
-- wrk's -t: thread k of n takes lines k+1, k+1+n, ... MODE "cycle" starts again at the end (a page can
-- be opened any number of times); MODE "once" never repeats a line (each POST spends its own receipt
-- code or form token) and stops the thread if its lines run out (bench_http reports the rate as a floor).
-- RECYCLE: each second, this many of a thread's requests say "Connection: close", so connections come
-- and go (as phones' do) and the kernel spreads them over the server's workers: wrk opens all its
-- connections at once, and one worker often accepts them all.
-- XFF: the index of the first client address; request j of thread k (both from 0) comes from address
-- XFF + k + j * THREADS of 10.0.0.0/8, counted as benchmarks/loadgen.py counts them (index 0 is 10.0.0.1),
-- so no address is seen twice and no request is spared by the rate limit.
-- done() prints one line "WRK_RESULT {json}" with the rate, the latency percentiles (microseconds),
-- wrk's error counts, the count of answers by HTTP status, and the requests sent and answered.

local threads = {}
local thread_count = 0

function setup(thread)
   thread:set("id", thread_count)
   table.insert(threads, thread)
   thread_count = thread_count + 1
end

local lines = {}
local method = "GET"
local once = false
local headers = {}
local recycle = 0
local second = 0
local to_close = 0
local index = 0
local step = 1
local xff = 0
-- wrk calls request() once on the first thread before the run, to check the request parses;
-- that call must not use up a line, or the first receipt code would be counted as sent but never be.
local checking = false
exhausted_flag = 0
sent = 0
answered = 0
statuses = {}

local function address(n)
   n = n + 1
   return string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
end

function init(args)
   local file, position = args[1], 0
   method = args[2] or "GET"
   once = args[3] == "once"
   step = tonumber(args[4] or "1")
   for line in io.lines(file) do
      if position % step == id then
         local tab = string.find(line, "\t", 1, true)
         table.insert(lines, { string.sub(line, 1, tab - 1), string.sub(line, tab + 1) })
      end
      position = position + 1
   end
   assert(#lines > 0, "no requests for thread " .. id .. " in " .. file)
   for name, value in pairs(wrk.headers) do
      headers[name] = value
   end
   if method == "POST" then
      headers["Content-Type"] = "application/x-www-form-urlencoded"
   end
   recycle = tonumber(args[5] or "0")
   xff = tonumber(args[6] or "0")
   checking = id == 0
end

function request()
   if checking then
      checking = false
      local first = lines[1]
      return wrk.format(method, first[1], headers, method == "POST" and first[2] or nil)
   end
   index = index + 1
   if index > #lines then
      if not once then
         index = 1
      else
         -- Out of lines: stop, and meanwhile ask for something harmless rather than re-send a line.
         exhausted_flag = 1
         wrk.thread:stop()
         headers["X-Forwarded-For"] = nil
         headers["Connection"] = nil
         return wrk.format("GET", "/healthz", headers)
      end
   end
   headers["X-Forwarded-For"] = address(xff + id + sent * step)
   sent = sent + 1
   local item = lines[index]
   local now = os.time()
   if now ~= second then
      second = now
      to_close = to_close + recycle
   end
   if to_close > 0 then
      to_close = to_close - 1
      headers["Connection"] = "close"
   else
      headers["Connection"] = nil
   end
   return wrk.format(method, item[1], headers, method == "POST" and item[2] or nil)
end

function response(status, _, _)
   answered = answered + 1
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, _)
   local total_sent, total_answered, total_exhausted, by_status = 0, 0, 0, {}
   local per_thread = {}
   for _, thread in ipairs(threads) do
      local s = thread:get("sent")
      total_sent = total_sent + s
      total_answered = total_answered + thread:get("answered")
      total_exhausted = total_exhausted + thread:get("exhausted_flag")
      table.insert(per_thread, string.format("%d", s))
      for status, count in pairs(thread:get("statuses")) do
         by_status[status] = (by_status[status] or 0) + count
      end
   end
   local parts = {}
   for status, count in pairs(by_status) do
      table.insert(parts, string.format('"%d": %d', status, count))
   end
   local e = summary.errors
   io.write(string.format(
      'WRK_RESULT {"duration_us": %d, "requests": %d, "bytes": %d, '
         .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, '
         .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
         .. '"statuses": {%s}, "sent": %d, "answered": %d, "sent_per_thread": [%s], "exhausted": %d}\n',
      summary.duration, summary.requests, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      e.connect, e.read, e.write, e.status, e.timeout,
      table.concat(parts, ", "), total_sent, total_answered, table.concat(per_thread, ", "), total_exhausted
   ))
end
