-- POST /Greeter/sleepy (a call: the connection waits for the result) sleeping SLEEP_MS (default 2000).
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "common.lua")

wrk.method = "POST"
wrk.path = "/Greeter/sleepy"
wrk.body = os.getenv("SLEEP_MS") or "2000"
wrk.headers["Content-Type"] = "application/json"

done = bench_done
