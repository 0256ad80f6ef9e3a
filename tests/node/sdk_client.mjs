// The official openai Node SDK pointed at the service: only baseURL changes.
// Usage: node sdk_client.mjs <base url ending in /v1> <caller key>
// Prints one JSON line with what each call returned (secrets reduced to their prefix).
import OpenAI from "openai";

const [baseURL, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const out = {};

const secret = await client.realtime.clientSecrets.create({
  session: { type: "realtime", model: "gpt-realtime-2", audio: { output: { voice: "marin" } } },
});
out.realtime = { prefix: secret.value.slice(0, 3), voice: secret.session.audio.output.voice };

try {
  await client.realtime.clientSecrets.create({
    session: { type: "realtime", audio: { output: { voice: "robot" } } },
  });
  out.refused = null;
} catch (err) {
  out.refused = { status: err.status, code: err.code, param: err.param };
}

console.log(JSON.stringify(out));
