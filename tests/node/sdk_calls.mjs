// A server-created call from Node: the offer posted as OpenAI's multipart (fetch, FormData),
// then the official SDK's client.realtime.calls.hangup, pointed at the service.
// Usage: node sdk_calls.mjs <base url ending in /v1> <caller key> <sdp offer>
// Prints one JSON line: the call id's prefix, and what each hang-up returned.
import OpenAI from "openai";

const [baseURL, apiKey, offer] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const out = {};

const form = new FormData();
form.append("sdp", new Blob([offer], { type: "application/sdp" }));
form.append("session", new Blob([JSON.stringify({ type: "realtime" })], { type: "application/json" }));
const created = await fetch(`${baseURL}/realtime/calls`, {
  method: "POST",
  body: form,
  headers: { Authorization: `Bearer ${apiKey}` },
});
const callId = created.headers.get("location").split("/").pop();
out.created = { status: created.status, prefix: callId.slice(0, 4) };

await client.realtime.calls.hangup(callId);
out.hungUp = true;
try {
  await client.realtime.calls.hangup(callId);
  out.again = null;
} catch (err) {
  out.again = { status: err.status, code: err.code };
}
console.log(JSON.stringify(out));
