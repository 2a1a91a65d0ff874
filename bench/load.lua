-- wrk script of the hookgate load benchmark (bench/load.ts writes its data
-- file and runs it). Every request is a distinct, correctly signed (or, in
-- "bad" mode, wrongly signed) 7.7 KB push delivery with its own
-- X-GitHub-Delivery id. Signing is impossible in Lua, so the data file holds
-- the signatures, made beforehand with WebCrypto:
--
--   line 1: body prefix
--   line 2: body suffix
--   then fixed-width records, no separators: 36-character delivery id,
--   64 hex digits of signature, 40-character nonce
--
-- and each body is prefix .. nonce .. suffix. The records stay one Lua
-- string: 250,000 small strings would make LuaJIT's GC (and so wrk) twice
-- as slow. Arguments (after wrk's "--"):
--   <data file> <good|bad> <first record> <record count> <event> <threads>
-- Records first .. first+count-1 are sent in order (threads interleave), and
-- cycled if wrk outruns them: bench/load.ts flags such a run. done() prints
-- one line "BENCH {json}" with the summary, latency percentiles (µs) and
-- wrk's own CPU seconds while sending (os.clock() is the process's CPU time;
-- the time spent loading this file in init() is left out). init() prints
-- "LOADED" when done, so that load.ts can sample the server's CPU time then.

local ID, SIG, NONCE = 36, 64, 40
local WIDTH = ID + SIG + NONCE

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local records, count, prefix, suffix, head, bad
local index, step = 0, 1

function init(args)
  local path, mode, first, event = args[1], args[2], tonumber(args[3]), args[5]
  count = tonumber(args[4])
  local file = assert(io.open(path, "rb"))
  prefix = file:read("*l")
  suffix = file:read("*l")
  records = file:read("*a")
  file:close()
  local total = math.floor(#records / WIDTH)
  assert(first + count <= total, "the data file has only " .. total .. " records")
  records = records:sub(first * WIDTH + 1, (first + count) * WIDTH)
  collectgarbage()
  bad = mode == "bad"
  head = "POST /webhook HTTP/1.1\r\nHost: 127.0.0.1" ..
    "\r\nUser-Agent: GitHub-Hookshot/bench\r\nAccept: */*" ..
    "\r\nContent-Type: application/json\r\nX-GitHub-Event: " .. event ..
    "\r\nX-GitHub-Hook-ID: 1" ..
    "\r\nX-GitHub-Hook-Installation-Target-Type: repository" ..
    "\r\nX-GitHub-Hook-Installation-Target-ID: 1" ..
    "\r\nContent-Length: " .. (#prefix + NONCE + #suffix) ..
    "\r\nX-GitHub-Delivery: "
  index = tid or 0
  step = tonumber(args[6]) or 1
  loaded_cpu = os.clock()
  io.write("LOADED\n")
  io.flush()
end

function request()
  local o = (index % count) * WIDTH
  index = index + step
  local sig = records:sub(o + ID + 1, o + ID + SIG)
  if bad then
    -- Well-formed but wrong: the digits rotated by one.
    sig = sig:sub(2) .. sig:sub(1, 1)
  end
  return head .. records:sub(o + 1, o + ID) ..
    "\r\nX-Hub-Signature-256: sha256=" .. sig .. "\r\n\r\n" .. prefix ..
    records:sub(o + ID + SIG + 1, o + WIDTH) .. suffix
end

function done(summary, latency, requests)
  local loaded = 0
  for _, thread in ipairs(threads) do
    loaded = math.max(loaded, thread:get("loaded_cpu") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"durationUs":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latencyUs":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d},' ..
      '"cpuSeconds":%.3f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, os.clock() - loaded))
end
