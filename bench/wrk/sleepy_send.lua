-- POST /Greeter/sleepy/send with a 20 s sleep (the body, in ms) on every request.
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "common.lua")

wrk.method = "POST"
wrk.path = "/Greeter/sleepy/send"
wrk.body = os.getenv("SLEEP_MS") or "20000"
wrk.headers["Content-Type"] = "application/json"

done = bench_done
