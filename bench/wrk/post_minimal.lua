-- POST the minimal GA session body (the one Express hard-codes) to the URL
-- given to wrk.  Used for peers (a) emulator, (c) naive FastAPI and
-- (d) the service (with BENCH_API_KEY set, sent as a Bearer token).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

wrk.method = "POST"
wrk.body = '{"session":{"type":"realtime","model":"gpt-realtime-2","audio":{"output":{"voice":"marin"}}}}'
bench_auth_headers(wrk.headers)
