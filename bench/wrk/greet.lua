-- POST /Greeter/greet with the JSON body "bench" on every request.
local dir = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
dofile(dir .. "common.lua")

wrk.method = "POST"
wrk.path = "/Greeter/greet"
wrk.body = '"bench"'
wrk.headers["Content-Type"] = "application/json"

done = bench_done
