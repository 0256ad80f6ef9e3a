// Benchmark peer (b): a reproduction of the token route in OpenAI's
// openai-realtime-console server.js (Express + global fetch, model and voice
// hard-coded). Only the upstream base URL and port come from the environment,
// so the benchmark can point it at the local emulator.
import express from "express";

const app = express();
const port = process.env.PORT || 3000;
const apiKey = process.env.OPENAI_API_KEY;
const baseUrl = process.env.OPENAI_BASE_URL || "https://api.openai.com/v1";

const sessionConfig = JSON.stringify({
  session: {
    type: "realtime",
    model: "gpt-realtime",
    audio: { output: { voice: "marin" } },
  },
});

// API route for ephemeral token generation
app.get("/token", async (req, res) => {
  try {
    const response = await fetch(`${baseUrl}/realtime/client_secrets`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${apiKey}`,
        "Content-Type": "application/json",
      },
      body: sessionConfig,
    });
    const data = await response.json();
    res.json(data);
  } catch (error) {
    console.error("Token generation error:", error);
    res.status(500).json({ error: "Failed to generate token" });
  }
});

app.listen(port, "127.0.0.1", () => {
  console.log(`Express server running on 127.0.0.1:${port}`);
});
