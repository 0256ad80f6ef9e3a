// realtime-token-proxy demo: mint a client secret, then (with a real key) talk over WebRTC.
// Plain browser JS, no build step. The raw secret lives only in this closure, never in the DOM.
"use strict";

(() => {
  const OPENAI_CALLS_URL = "https://api.openai.com/v1/realtime/calls";
  const EMULATOR_PREFIX = "ek_emulator_";
  const $ = (id) => document.getElementById(id);

  let secret = null; // the ek_ value: never written to the page
  let expiresAt = 0; // unix seconds
  let countdown = null;
  let peer = null;
  let mic = null;
  const lines = new Map(); // transcript item id -> <span>

  class RequestError extends Error {
    constructor(message, status = 0) {
      super(message);
      this.status = status;
    }
  }

  // `?api=http://host:port` points at another origin; the default is this page's origin.
  function apiBase() {
    const param = new URLSearchParams(location.search).get("api");
    if (!param) return location.origin;
    try {
      const url = new URL(param);
      if (url.protocol === "http:" || url.protocol === "https:") {
        return url.origin + url.pathname.replace(/\/+$/, "");
      }
    } catch {
      // fall through
    }
    return null;
  }
  const API = apiBase();

  function showError(message) {
    $("error").textContent = message;
    $("error").hidden = !message;
  }
  const clearError = () => showError("");
  const setStatus = (message) => {
    $("status").textContent = message;
  };

  function authHeaders() {
    const key = $("api-key").value.trim();
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  // One fetch, never retried. A thrown fetch (TypeError) is a network or CORS failure.
  async function send(url, init) {
    let res;
    try {
      res = await fetch(url, { cache: "no-store", credentials: "omit", ...init });
    } catch {
      throw new RequestError(
        `Request failed: could not reach ${new URL(url).origin} (network error or CORS)`,
      );
    }
    const text = await res.text();
    if (!res.ok) {
      let message = `HTTP ${res.status} ${res.statusText}`.trim();
      try {
        const body = JSON.parse(text);
        if (typeof body?.error?.message === "string") message = body.error.message;
      } catch {
        // not OpenAI's envelope: keep the status line
      }
      throw new RequestError(message, res.status);
    }
    return text;
  }

  // A typed key goes only to this page's origin or to an origin the serving
  // service lists in DEMO_API_ORIGINS (config.json): a link with ?api=https://evil
  // must not be a way to collect keys.
  let apiOrigins = null;
  async function keyMayGoTo(origin) {
    if (origin === location.origin) return true;
    if (apiOrigins === null) {
      try {
        const res = await fetch("config.json", { cache: "no-store", credentials: "omit" });
        apiOrigins = res.ok ? ((await res.json()).api_origins ?? []) : [];
      } catch {
        apiOrigins = [];
      }
    }
    return apiOrigins.includes(origin);
  }

  async function api(method, path, body) {
    if (API === null) throw new RequestError("Invalid ?api= parameter: use http(s)://host:port");
    const headers = { ...authHeaders() };
    const origin = new URL(API).origin;
    if (headers.Authorization && !(await keyMayGoTo(origin))) {
      throw new RequestError(
        `Not sending your API key to ${origin}: it is not this page's origin ` +
          "and not in the service's DEMO_API_ORIGINS.",
      );
    }
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const text = await send(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return JSON.parse(text);
  }

  function fillSelect(select, choice) {
    select.replaceChildren(
      ...choice.allowed.map((value) => new Option(value, value, false, value === choice.default)),
    );
  }

  // Until the policy is known, let the service pick its defaults (the field is left out).
  function unknownChoices() {
    for (const id of ["model", "voice"]) {
      if ($(id).options.length === 0) $(id).add(new Option("(service default)", ""));
    }
  }

  async function loadPolicy() {
    clearError();
    setStatus("Loading policy…");
    $("load-policy").disabled = true;
    try {
      const policy = await api("GET", "/v1/policy");
      fillSelect($("model"), policy.models);
      fillSelect($("voice"), policy.voices);
      $("profile").textContent = `(profile: ${policy.profile})`;
      setStatus("Policy loaded: choose a model and a voice, then mint.");
    } catch (err) {
      unknownChoices();
      showError(err.message);
      setStatus(err.status === 401 ? "Enter an API key, then press Load policy." : "");
    } finally {
      $("load-policy").disabled = false;
    }
  }

  function masked(session) {
    const copy = structuredClone(session);
    copy.client_secret.value = `${String(session.client_secret.value).slice(0, 6)}…`;
    return copy;
  }

  function forgetSecret() {
    secret = null;
    clearInterval(countdown);
    countdown = null;
    $("connect").disabled = true;
  }

  function tick() {
    const left = Math.max(0, Math.floor(expiresAt - Date.now() / 1000));
    $("expires-in").textContent = String(left);
    if (left === 0) {
      forgetSecret();
      if (!peer) setStatus("The client secret expired: mint a new one.");
    }
  }

  async function mint() {
    forgetSecret();
    clearError();
    $("result").hidden = true;
    $("session-json").textContent = "";
    setStatus("Minting…");
    $("mint").disabled = true;
    const request = {};
    if ($("model").value) request.model = $("model").value;
    if ($("voice").value) request.voice = $("voice").value;
    try {
      const session = await api("POST", "/v1/realtime/sessions", request);
      const value = session?.client_secret?.value;
      const expires = session?.client_secret?.expires_at;
      if (typeof value !== "string" || !value || !Number.isFinite(expires)) {
        throw new RequestError("The service answered without a client secret.");
      }
      secret = value;
      expiresAt = expires;
      $("session-json").textContent = JSON.stringify(masked(session), null, 2);
      $("result").hidden = false;
      tick();
      countdown = setInterval(tick, 500);
      if (secret !== null) {
        $("connect").disabled = peer !== null;
        setStatus(`Minted ${session.id}: press Connect to talk.`);
      }
    } catch (err) {
      showError(err.message);
      setStatus("");
    } finally {
      $("mint").disabled = false;
    }
  }

  function transcriptLine(id, who) {
    let span = lines.get(id);
    if (!span) {
      const p = document.createElement("p");
      const label = document.createElement("span");
      label.className = "who";
      label.textContent = `${who}: `;
      span = document.createElement("span");
      p.append(label, span);
      $("transcript").append(p);
      lines.set(id, span);
    }
    return span;
  }

  function onServerEvent(raw) {
    let event;
    try {
      event = JSON.parse(raw);
    } catch {
      return;
    }
    switch (event.type) {
      case "session.created":
        setStatus("Connected: speak into the microphone.");
        break;
      case "response.output_audio_transcript.delta":
        transcriptLine(event.item_id, "Assistant").textContent += event.delta;
        break;
      case "response.output_audio_transcript.done":
        transcriptLine(event.item_id, "Assistant").textContent = event.transcript;
        break;
      case "conversation.item.input_audio_transcription.completed":
        transcriptLine(event.item_id, "You").textContent = event.transcript;
        break;
      case "error":
        showError(event.error?.message ?? "The realtime session reported an error.");
        break;
      default:
        break;
    }
  }

  function hangup() {
    if (peer) peer.close();
    peer = null;
    if (mic) for (const track of mic.getTracks()) track.stop();
    mic = null;
    $("remote-audio").srcObject = null;
    $("hangup").disabled = true;
    $("connect").disabled = secret === null;
  }

  // The GA WebRTC flow: offer SDP to OpenAI with the ek, apply the answer.
  async function connect() {
    clearError();
    if (secret === null) {
      showError("No valid client secret: mint one first.");
      return;
    }
    if (secret.startsWith(EMULATOR_PREFIX)) {
      showError(
        "WebRTC needs a real OpenAI key: this server uses the emulator, " +
          "whose ek_emulator_ secrets are fake. No connection was attempted.",
      );
      setStatus("");
      $("connect").disabled = true;
      return;
    }
    if (!navigator.mediaDevices?.getUserMedia) {
      showError("The microphone needs a secure context (https:// or http://localhost).");
      return;
    }
    const ek = secret;
    $("connect").disabled = true;
    setStatus("Asking for the microphone…");
    try {
      mic = await navigator.mediaDevices.getUserMedia({ audio: true });
      peer = new RTCPeerConnection();
      const pc = peer;
      pc.ontrack = (event) => {
        $("remote-audio").srcObject = event.streams[0];
      };
      pc.onconnectionstatechange = () => {
        if (pc === peer && (pc.connectionState === "failed" || pc.connectionState === "closed")) {
          hangup();
          setStatus(`Call ended (${pc.connectionState}).`);
        }
      };
      pc.addTrack(mic.getAudioTracks()[0], mic);
      const channel = pc.createDataChannel("oai-events");
      channel.addEventListener("message", (event) => onServerEvent(event.data));
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      setStatus("Connecting to OpenAI…");
      const answer = await send(OPENAI_CALLS_URL, {
        method: "POST",
        body: offer.sdp,
        headers: { Authorization: `Bearer ${ek}`, "Content-Type": "application/sdp" },
      });
      await pc.setRemoteDescription({ type: "answer", sdp: answer });
      $("hangup").disabled = false;
      setStatus("Connected: waiting for the session…");
    } catch (err) {
      hangup();
      setStatus("");
      showError(err.name === "NotAllowedError" ? "Microphone access was denied." : err.message);
    }
  }

  $("api-base").textContent = API ?? "(invalid ?api= parameter)";
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadPolicy();
  });
  $("mint").addEventListener("click", mint);
  $("connect").addEventListener("click", connect);
  $("hangup").addEventListener("click", () => {
    hangup();
    setStatus("Hung up.");
  });
  loadPolicy();
})();
