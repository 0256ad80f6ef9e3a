// The page tests/test_browser_agents_sdk.py opens: OpenAI's Agents SDK (@openai/agents-realtime)
// and the openai JS SDK, bundled by esbuild into one static file, served from an origin other
// than the service's. Nothing here knows the service: it is configured as docs/clients.md
// ("Agents SDK") shows, with the service's calls URL as `baseUrl` and a caller key as `apiKey`.
//
// window.agents.connect({ service, key, model, voice, instructions, sdkDefaultModel }) resolves
// with the call id once the SDK says it is connected (`sdkDefaultModel`: the session is not told
// the model, so the SDK names its own default); window.agents.state() is what the test waits on;
// window.agents.hangUp() hangs the call up with the openai SDK (client.realtime.calls.hangup).
import { OpenAIRealtimeWebRTC, RealtimeAgent, RealtimeSession, tool } from "@openai/agents-realtime";
import OpenAI from "openai";
import { z } from "zod";

const seen = { status: "disconnected", events: [], errors: [], callId: null, hungUp: null };
let session = null;
let transport = null;
let client = null;

const weather = tool({
  name: "get_weather",
  description: "The weather in a city.",
  parameters: z.object({ city: z.string() }),
  execute: async ({ city }) => `Sunny in ${city}.`,
});

async function connect({ service, key, model, voice, instructions, sdkDefaultModel = false }) {
  const agent = new RealtimeAgent({ name: "Assistant", instructions, voice, tools: [weather] });
  transport = new OpenAIRealtimeWebRTC({
    baseUrl: `${service}/v1/realtime/calls?model=${encodeURIComponent(model)}`,
    useInsecureApiKey: true, // a caller key of the service's, not an OpenAI key
  });
  transport.on("connection_change", (status) => {
    seen.status = status;
  });
  session = new RealtimeSession(agent, {
    transport,
    ...(sdkDefaultModel ? {} : { model }),
    workflowName: "agents-sdk-test",
  });
  session.on("transport_event", (event) => {
    seen.events.push(event.type);
    if (event.type === "error") seen.errors.push(JSON.stringify(event.error ?? event));
  });
  session.on("error", (error) => seen.errors.push(String(error?.error?.message ?? error?.error)));
  await session.connect({ apiKey: key });
  seen.callId = transport.callId;
  client = new OpenAI({ apiKey: key, baseURL: `${service}/v1`, dangerouslyAllowBrowser: true });
  return seen.callId;
}

async function hangUp() {
  try {
    await client.realtime.calls.hangup(seen.callId);
    seen.hungUp = "ok";
  } catch (error) {
    seen.hungUp = `${error.status ?? ""} ${error.message}`;
  }
  return seen.hungUp;
}

function state() {
  const pc = transport?.connectionState?.peerConnection;
  return { ...seen, callId: seen.callId ?? transport?.callId ?? null, peer: pc ? pc.connectionState : null };
}

window.agents = { connect, hangUp, state };
document.getElementById("ready").textContent = "ready";
