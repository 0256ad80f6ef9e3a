-- GET /token, as openai-realtime-console's browser client does.
-- Used for peer (b) Express, whose body is hard-coded server-side.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

wrk.method = "GET"
wrk.path = "/token"
