-- Mixed traffic for peer (d), the service.  Rotates (per thread, each
-- thread starting at a different offset) through:
--   * the minimal GA body (same as every other peer gets),
--   * GA bodies with server_vad / semantic_vad turn detection,
--     input transcription and tools,
--   * beta bodies on POST /v1/realtime/sessions that must be translated
--     (turn_detection server_vad/semantic_vad, input_audio_transcription,
--     tools),
--   * policy rejections: a voice the policy does not allow, expected to be
--     answered with BENCH_REJECT_STATUS (default 403).
-- Issued requests are counted per kind ("ok" / "reject") so bench/run.py can
-- tell intended rejections from real errors.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")

local GA = "/v1/realtime/client_secrets"
local BETA = "/v1/realtime/sessions"
local reject_voice = os.getenv("BENCH_REJECT_VOICE")
if not reject_voice or reject_voice == "" then
   reject_voice = "bench-disallowed-voice"
end

local bodies = {
   { "ok", GA,
     '{"session":{"type":"realtime","model":"gpt-realtime-2","audio":{"output":{"voice":"marin"}}}}' },
   { "ok", BETA,
     '{"model":"gpt-realtime-2","voice":"alloy"}' },
   { "ok", GA,
     '{"session":{"type":"realtime","model":"gpt-realtime-2","instructions":"You are a terse assistant.",'
     .. '"audio":{"input":{"turn_detection":{"type":"server_vad","threshold":0.5,'
     .. '"prefix_padding_ms":300,"silence_duration_ms":500},'
     .. '"transcription":{"model":"gpt-transcribe"}},"output":{"voice":"marin"}}}}' },
   { "ok", BETA,
     '{"model":"gpt-realtime-2","voice":"alloy","modalities":["audio","text"],'
     .. '"turn_detection":{"type":"semantic_vad","eagerness":"auto"},'
     .. '"input_audio_transcription":{"model":"gpt-live-transcribe"}}' },
   { "reject", GA,
     '{"session":{"type":"realtime","model":"gpt-realtime-2","audio":{"output":{"voice":"'
     .. reject_voice .. '"}}}}' },
   { "ok", BETA,
     '{"model":"gpt-realtime-2","voice":"alloy","instructions":"Call tools when useful.",'
     .. '"turn_detection":{"type":"server_vad","threshold":0.6,"silence_duration_ms":400},'
     .. '"input_audio_transcription":{"model":"gpt-transcribe","language":"en"},'
     .. '"tools":[{"type":"function","name":"get_weather","description":"Current weather for a city.",'
     .. '"parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}],'
     .. '"tool_choice":"auto"}' },
   { "ok", GA,
     '{"session":{"type":"realtime","model":"gpt-realtime-2",'
     .. '"audio":{"input":{"turn_detection":{"type":"semantic_vad","eagerness":"low"}},'
     .. '"output":{"voice":"marin"}},'
     .. '"tools":[{"type":"function","name":"lookup_order","description":"Look up an order by id.",'
     .. '"parameters":{"type":"object","properties":{"order_id":{"type":"string"}},'
     .. '"required":["order_id"]}}],"tool_choice":"auto"}}' },
   { "reject", BETA,
     '{"model":"gpt-realtime-2","voice":"' .. reject_voice .. '"}' },
}

local prepared = {}
local cursor = 0

function init(args)
   for i, entry in ipairs(bodies) do
      local headers = bench_auth_headers({ Host = wrk.headers["Host"] })
      prepared[i] = { kind = entry[1], req = wrk.format("POST", entry[2], headers, entry[3]) }
   end
   -- Spread threads over the rotation so they do not issue in lock-step.
   cursor = ((thread_id or 0) * 3) % #prepared
end

function request()
   cursor = cursor % #prepared + 1
   local entry = prepared[cursor]
   bench_issue(entry.kind)
   return entry.req
end
