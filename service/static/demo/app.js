// realtime-token-proxy demo: talk over WebRTC through a call the service creates (whenever
// its policy lists `calls`: Connect follows the Call select), or, from a service that creates
// no calls, mint a client secret and, with a real key, connect to OpenAI with it. Minting
// never changes what Connect does. During a server call the page polls the call's state
// (GET /v1/realtime/calls/{id}, /v1/live/sessions/{id}) and shows what the service does for
// it. Plain browser JS, no build step. A minted secret lives only in this closure, never in
// the DOM; a server-created call never gives the page one at all.
"use strict";

(() => {
  const OPENAI_CALLS_URL = "https://api.openai.com/v1/realtime/calls";
  const EMULATOR_PREFIX = "ek_emulator_";
  const STATE_POLL_MS = 1500;
  // The page's attempts to break the policy from the browser, each undone by the service.
  const TRY_BUTTONS = ["try-override", "try-response-voice", "try-system-item"];
  const REALTIME_VOICES = [
    "alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar",
  ];
  const $ = (id) => document.getElementById(id);

  let secret = null; // the ek_ value: never written to the page
  let expiresAt = 0; // unix seconds
  let countdown = null;
  let peer = null;
  let mic = null;
  let policy = null; // the last /v1/policy answer
  let call = null; // the server-created call: { kind, id } once the service answered
  let events = null; // the server call's data channel
  let watching = null; // the timer of the next call-state poll
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
  // Returns the body's text and the response headers (those CORS exposes).
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
    return { text, headers: res.headers };
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

  // A request to the service, with the typed key where it may go. `body` is JSON-encoded,
  // unless it is FormData (then the browser writes the multipart Content-Type).
  async function serviceRequest(method, path, body) {
    if (API === null) throw new RequestError("Invalid ?api= parameter: use http(s)://host:port");
    const headers = { ...authHeaders() };
    const origin = new URL(API).origin;
    if (headers.Authorization && !(await keyMayGoTo(origin))) {
      throw new RequestError(
        `Not sending your API key to ${origin}: it is not this page's origin ` +
          "and not in the service's DEMO_API_ORIGINS.",
      );
    }
    const form = body instanceof FormData;
    if (body !== undefined && !form) headers["Content-Type"] = "application/json";
    return send(API + path, {
      method,
      headers,
      body: body === undefined || form ? body : JSON.stringify(body),
    });
  }

  async function api(method, path, body) {
    return JSON.parse((await serviceRequest(method, path, body)).text);
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

  // The call kinds the service creates itself (`calls` in /v1/policy); none on an older service.
  function offeredCalls() {
    const kinds = Array.isArray(policy?.calls) ? policy.calls : [];
    return kinds.filter((kind) => kind === "realtime" || (kind === "live" && policy.live));
  }

  // Connect creates the call the Call select names whenever the service offers calls; a
  // minted secret is only for a service that creates none.
  const connectMakesCall = () => offeredCalls().length > 0;

  function refreshConnect() {
    $("connect").disabled = peer !== null || (!connectMakesCall() && secret === null);
  }

  // Realtime's lists are the policy's top level; GPT-Live's are under `live`.
  function fillChoices() {
    const live = $("call-type").value === "live" && offeredCalls().includes("live");
    const source = live ? policy.live : policy;
    fillSelect($("model"), source.models);
    fillSelect($("voice"), source.voices);
  }

  function showCallTypes() {
    const kinds = offeredCalls();
    for (const option of $("call-type").options) option.disabled = !kinds.includes(option.value);
    if (kinds.length > 0 && !kinds.includes($("call-type").value)) {
      $("call-type").value = kinds[0];
    }
    $("call-type-row").hidden = kinds.length === 0;
  }

  async function loadPolicy() {
    clearError();
    setStatus("Loading policy…");
    $("load-policy").disabled = true;
    try {
      policy = await api("GET", "/v1/policy");
      showCallTypes();
      fillChoices();
      $("profile").textContent = `(profile: ${policy.profile})`;
      setStatus(
        offeredCalls().length > 0
          ? "Policy loaded: choose a call, a model and a voice, then Connect."
          : "Policy loaded: choose a model and a voice, then mint.",
      );
      refreshConnect();
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
    refreshConnect();
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
    $("connect").disabled = true;
    clearError();
    $("result").hidden = true;
    if (peer === null) $("call-panel").hidden = true; // an ended call's panel goes
    $("call-info").hidden = true;
    $("secret-info").hidden = false;
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
      refreshConnect();
      setStatus(
        connectMakesCall()
          ? `Minted ${session.id}: the secret is for your own client; Connect asks the ` +
              "service for a call, as the Call select says."
          : `Minted ${session.id}: press Connect to talk.`,
      );
    } catch (err) {
      // Connect stays off: a call with the selection just refused would be refused too.
      // Changing a select (or loading the policy) turns it back on.
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

  // Every event but a transcript one is listed by its type, in arrival order; a response's
  // end also shows its status (a cancelled one: the service stopped it).
  function eventLine(type, detail = "") {
    const p = document.createElement("p");
    p.className = "event";
    const code = document.createElement("code");
    code.textContent = type;
    p.append(code);
    if (detail) p.append(` ${detail}`);
    $("transcript").append(p);
  }

  function eventDetail(event) {
    if (event.type === "response.done") return event.response?.status ?? "";
    return "";
  }

  function showSession(session) {
    $("session-json").textContent = JSON.stringify(session, null, 2);
  }

  function onServerEvent(raw) {
    let event;
    try {
      event = JSON.parse(raw);
    } catch {
      return;
    }
    if (typeof event?.type !== "string") return;
    const transcriptEvent = /transcript/.test(event.type);
    if (!transcriptEvent) eventLine(event.type, eventDetail(event));
    switch (event.type) {
      case "session.created": // Realtime: the effective session, as OpenAI applied it
      case "session.started": // GPT-Live
        if (call !== null && event.session) showSession(event.session);
        setStatus("Connected: speak into the microphone.");
        break;
      case "session.input_transcript.delta": // GPT-Live: what the caller said
        transcriptLine(event.item_id ?? "live-input", "You").textContent += event.delta ?? "";
        break;
      case "session.output_transcript.delta":
        transcriptLine(event.item_id ?? "live-output", "Assistant").textContent +=
          event.delta ?? "";
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
        if (transcriptEvent) eventLine(event.type); // a transcript event without text to show
        break;
    }
  }

  function watchPeer(pc) {
    $("peer-state").textContent = pc.connectionState;
    pc.onconnectionstatechange = () => {
      if (pc !== peer) return;
      $("peer-state").textContent = pc.connectionState;
      if (pc.connectionState === "failed" || pc.connectionState === "closed") {
        hangup();
        setStatus(`Call ended (${pc.connectionState}).`);
      }
    };
    pc.ontrack = (event) => {
      $("remote-audio").srcObject = event.streams[0];
    };
  }

  // What the service does for the call, polled while it lasts.
  const callPath = ({ kind, id }) =>
    `${kind === "live" ? "/v1/live/sessions" : "/v1/realtime/calls"}/${encodeURIComponent(id)}`;

  function listItems(list, items) {
    list.replaceChildren(
      ...items.map((text) => {
        const item = document.createElement("li");
        item.textContent = text;
        return item;
      }),
    );
  }

  function overrideText(override) {
    if (override.outcome === "reverted") {
      return `${override.field}: reverted in ${override.revert_ms} ms`;
    }
    if (override.outcome === "hung_up") return `${override.field}: the call was hung up`;
    if (override.outcome === "cancelled") return `${override.scope} ${override.field}: cancelled`;
    if (override.outcome === "deleted") return `${override.scope} ${override.field}: deleted`;
    return `${override.field}: reverting…`;
  }

  function minutes(ms) {
    const seconds = Math.ceil(ms / 1000);
    return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  }

  function showCallState(state) {
    $("call-state").textContent = state.state;
    const at = new Date(state.deadline_at_ms).toLocaleTimeString();
    $("call-deadline").textContent = `${minutes(state.left_ms)} left (hung up at ${at})`;
    listItems($("call-fixed"), state.fixed);
    listItems($("call-overrides"), state.overrides.map(overrideText));
    const { tokens, seconds, usd } = state.usage;
    const cost = usd === undefined ? "" : `, $${usd}`;
    $("call-usage").textContent =
      (state.kind === "live" ? `${seconds} s` : `${tokens} tokens, ${seconds} s`) + cost;
  }

  // One request at a time: the next poll is scheduled once this one answered.
  async function pollCallState(watched) {
    if (watched !== call) return;
    try {
      showCallState(await api("GET", callPath(watched)));
    } catch (err) {
      if (watched !== call) return;
      if (err.status === 404) {
        $("call-state").textContent = "ended"; // the service no longer holds it
        return;
      }
      $("call-state").textContent = `unknown (${err.message})`;
    }
    if (watched === call) watching = setTimeout(() => pollCallState(watched), STATE_POLL_MS);
  }

  function watchCallState(watched) {
    clearTimeout(watching);
    for (const id of ["call-state", "call-deadline", "call-usage"]) $(id).textContent = "…";
    for (const id of ["call-fixed", "call-overrides"]) $(id).replaceChildren();
    for (const id of TRY_BUTTONS) {
      $(id).hidden = watched.kind !== "realtime";
      $(id).disabled = events?.readyState !== "open";
    }
    $("call-panel").hidden = false;
    pollCallState(watched);
  }

  // A session.update from the browser that changes a field the policy fixes (tracing: fixed
  // for every Realtime call), for the service to revert while the panel shows it.
  function tryOverride() {
    if (events?.readyState !== "open") return;
    const tracing = policy?.tracing === "auto" ? null : "auto";
    events.send(JSON.stringify({ type: "session.update", session: { type: "realtime", tracing } }));
    setStatus("Sent a session.update that changes tracing: the service puts it back.");
  }

  // A voice the policy does not allow (the session's own if it allows them all).
  function refusedVoice() {
    const allowed = policy?.voices?.allowed ?? [];
    return REALTIME_VOICES.find((voice) => !allowed.includes(voice)) ?? $("voice").value;
  }

  // A response.create asking for another voice for this one response: the service cancels
  // a response whose voice the policy refuses (the panel lists it as cancelled).
  function tryResponseVoice() {
    if (events?.readyState !== "open") return;
    const voice = refusedVoice();
    const response = { audio: { output: { voice } } };
    events.send(JSON.stringify({ type: "response.create", response }));
    setStatus(`Sent a response.create in the voice ${voice}: the service cancels it.`);
  }

  // A system message from the browser: when the service sets the instructions itself
  // (POLICY_INSTRUCTIONS_MODE=server) it deletes the item (the panel lists it as deleted).
  function trySystemItem() {
    if (events?.readyState !== "open") return;
    const item = {
      type: "message",
      role: "system",
      content: [{ type: "input_text", text: "Demo: instructions added by the browser." }],
    };
    events.send(JSON.stringify({ type: "conversation.item.create", item }));
    setStatus("Sent a system message: a service that sets the instructions deletes it.");
  }

  // Ends the call on this side only; `endCall` first asks the service to end a server call.
  function hangup() {
    if (peer) {
      peer.close();
      $("peer-state").textContent = "closed";
    }
    if (call !== null && !$("call-panel").hidden) $("call-state").textContent = "ended";
    clearTimeout(watching);
    watching = null;
    for (const id of TRY_BUTTONS) $(id).disabled = true;
    events = null;
    peer = null;
    call = null;
    if (mic) for (const track of mic.getTracks()) track.stop();
    mic = null;
    $("remote-audio").srcObject = null;
    $("hangup").disabled = true;
    refreshConnect();
  }

  function endAtService(ending) {
    return serviceRequest("POST", `${callPath(ending)}/hangup`);
  }

  // A server call ends through the service (which hangs up with OpenAI) before the peer
  // closes: closing first would look like a lost connection upstream.
  async function endCall() {
    const ending = call;
    $("hangup").disabled = true;
    clearError();
    try {
      if (ending?.id) {
        setStatus("Hanging up…");
        await endAtService(ending);
      }
      setStatus("Hung up.");
    } catch (err) {
      showError(`Hang-up failed: ${err.message} (the call was closed here)`);
      setStatus("");
    } finally {
      hangup();
    }
  }

  // No trickle ICE: the offer the service relays must already carry the candidates.
  function iceGathered(pc, timeoutMs = 5000) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        if (pc.iceGatheringState !== "complete") return;
        pc.removeEventListener("icegatheringstatechange", done);
        clearTimeout(timer);
        resolve();
      };
      // Past the timeout, the candidates found so far go (a host candidate is enough locally).
      const timer = setTimeout(() => {
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }, timeoutMs);
      pc.addEventListener("icegatheringstatechange", done);
    });
  }

  // The service's call: the session it will apply, as Realtime's or GPT-Live's request shapes it.
  function callSession(kind) {
    const session = kind === "realtime" ? { type: "realtime" } : {};
    if ($("model").value) session.model = $("model").value;
    if ($("voice").value) session.audio = { output: { voice: $("voice").value } };
    return session;
  }

  // POST the offer to the service; returns { id, answer, session (Live only), decisions }.
  async function createCall(kind, offerSdp) {
    if (kind === "live") {
      const created = await api("POST", "/v1/live/sessions", {
        session: callSession(kind),
        transport: { type: "webrtc", sdp: offerSdp },
      });
      const answer = created?.transport?.sdp;
      if (typeof answer !== "string" || typeof created?.session?.id !== "string") {
        throw new RequestError("The service answered without a session id and an SDP answer.");
      }
      return { id: created.session.id, answer, session: created.session, decisions: null };
    }
    const form = new FormData();
    form.set("sdp", offerSdp);
    form.set("session", JSON.stringify(callSession(kind)));
    const { text, headers } = await serviceRequest("POST", "/v1/realtime/calls", form);
    const id = (headers.get("Location") ?? "").split("/").pop();
    if (!id) throw new RequestError("The service answered without a Location for the call.");
    return { id, answer: text, session: null, decisions: headers.get("X-Policy-Decisions") };
  }

  // The default when the service offers calls: the browser offers, the service creates the
  // call with OpenAI's key and returns the answer. No secret is minted or seen.
  async function connectCall() {
    clearError();
    if (!navigator.mediaDevices?.getUserMedia) {
      showError("The microphone needs a secure context (https:// or http://localhost).");
      return;
    }
    const kind = $("call-type").value;
    $("connect").disabled = true;
    $("result").hidden = true;
    $("call-panel").hidden = true;
    $("transcript").replaceChildren();
    lines.clear();
    setStatus("Asking for the microphone…");
    try {
      mic = await navigator.mediaDevices.getUserMedia({ audio: true });
      peer = new RTCPeerConnection();
      const pc = peer;
      call = { kind, id: null };
      watchPeer(pc);
      pc.addTrack(mic.getAudioTracks()[0], mic);
      const channel = pc.createDataChannel("oai-events");
      channel.addEventListener("message", (event) => onServerEvent(event.data));
      channel.addEventListener("open", () => {
        if (pc === peer) for (const id of TRY_BUTTONS) $(id).disabled = false;
      });
      events = channel;
      await pc.setLocalDescription(await pc.createOffer());
      await iceGathered(pc);
      setStatus("Asking the service for a call…");
      const created = await createCall(kind, pc.localDescription.sdp);
      if (pc !== peer) {
        endAtService({ kind, id: created.id }).catch(() => {}); // the peer failed meanwhile
        return;
      }
      call.id = created.id;
      $("call-id").textContent = created.id;
      $("call-info").hidden = false;
      $("secret-info").hidden = true;
      $("session-json").textContent = "";
      if (created.session) showSession(created.session);
      $("result").hidden = false;
      watchCallState(call);
      await pc.setRemoteDescription({ type: "answer", sdp: created.answer });
      $("hangup").disabled = false;
      const decisions = created.decisions ? ` (policy: ${created.decisions})` : "";
      setStatus(`Call ${created.id} created${decisions}: waiting for the session…`);
    } catch (err) {
      // A call the service created but this page cannot use is ended there too.
      if (call?.id) endAtService(call).catch(() => {});
      hangup();
      setStatus("");
      showError(err.name === "NotAllowedError" ? "Microphone access was denied." : err.message);
    }
  }

  // The GA WebRTC flow: offer SDP to OpenAI with the ek, apply the answer.
  async function connectWithSecret() {
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
      watchPeer(pc);
      pc.addTrack(mic.getAudioTracks()[0], mic);
      const channel = pc.createDataChannel("oai-events");
      channel.addEventListener("message", (event) => onServerEvent(event.data));
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      setStatus("Connecting to OpenAI…");
      const { text: answer } = await send(OPENAI_CALLS_URL, {
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
  $("connect").addEventListener("click", () =>
    connectMakesCall() ? connectCall() : connectWithSecret(),
  );
  $("hangup").addEventListener("click", endCall);
  $("try-override").addEventListener("click", tryOverride);
  $("try-response-voice").addEventListener("click", tryResponseVoice);
  $("try-system-item").addEventListener("click", trySystemItem);
  $("call-type").addEventListener("change", () => {
    fillChoices();
    refreshConnect();
  });
  for (const id of ["model", "voice"]) $(id).addEventListener("change", refreshConnect);
  loadPolicy();
})();
