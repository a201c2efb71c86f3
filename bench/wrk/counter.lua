-- POST /Counter/<key>/add with body 1, the key going round-robin over N keys (default 1000):
--   wrk ... -s counter.lua <url> -- [keys]
-- COUNTER_SUFFIX is appended to the path (`/send` posts sends instead of calls).
-- Each wrk thread starts at its own offset, so threads together still cycle through all keys.
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "common.lua")

local thread_count = 0
function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
end

local keys = 1000
local n = 0
local headers = { ["Content-Type"] = "application/json" }
local suffix = os.getenv("COUNTER_SUFFIX") or ""

function init(args)
  keys = tonumber(args[1] or "") or 1000
  n = (tonumber(tid) or 0) * 7919
end

function request()
  n = n + 1
  return wrk.format("POST", "/Counter/key-" .. (n % keys) .. "/add" .. suffix, headers, "1")
end

done = bench_done
