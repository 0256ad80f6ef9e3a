"""OpenAI's Agents SDK (`@openai/agents-realtime`) in Chromium, through the service.

The real SDK and the openai JS SDK, pinned by tests/node/package-lock.json,
are bundled by esbuild into one static page (tests/node/agents_page.mjs)
served from its own origin, so every request it makes to the service is
cross-origin with the SDKs' own headers (`X-OpenAI-Agents-SDK`,
`X-Stainless-*`). It is configured as docs/clients.md's "Agents SDK" section
says: `baseUrl` the service's `/v1/realtime/calls?model=…`,
`useInsecureApiKey: true`, a caller key (AUTH_MODE=api_key) as `apiKey`.

The SDK posts a bare SDP offer, then sends its usual `session.update` on the
data channel (its agent's instructions, voice and tools) and its tracing on
`session.created`. The service creates the call on the emulator, its own
process (a real aiortc peer, `python -m service emulator`), whose
`GET /_emulator/calls/{id}` shows the session as the model would hold it:
after the supervisor's reverts, the policy's voice, tools and tracing, the
agent's instructions (the policy leaves those to the client), and the call
still up.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request

from service.api.app import CORS_ALLOWED
from service.auth import new_api_key
from tests import demo_page
from tests.node_packages import NODE_DIR, node_with_packages
from tests.servers import ROOT, ServiceProcess, emulator_process, wait_until

MEDIA_ARGS = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")
MODEL = "gpt-realtime-2.1-mini"
"""The `?model=` the page asks for: allowed, and not the policy's default."""
POLICY_VOICE = "marin"
AGENT_VOICE = "verse"
"""Not among POLICY_ALLOWED_VOICES: the supervisor must put marin back."""
INSTRUCTIONS = "You are the Agents SDK test's assistant. Answer in one sentence."
GUARD = 30.0
"""How long to wait for a process or the browser before calling it a hang (never a bound
the behaviour must meet: each test checks what happened, not how soon)."""


@pytest.fixture(name="node", scope="module")
def fixture_node() -> str:
    """Node.js with tests/node's locked packages (the SDKs and esbuild)."""
    return node_with_packages()


@pytest.fixture(name="page_dir", scope="module")
def fixture_page_dir(node: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page and its one bundled script, as a static site would serve them."""
    folder = tmp_path_factory.mktemp("agents-page")
    shutil.copy(NODE_DIR / "agents_page.html", folder / "index.html")
    subprocess.run(
        [node, str(NODE_DIR / "bundle.mjs"), str(folder / "agents_page.js")],
        cwd=NODE_DIR,
        check=True,
        timeout=120,
    )
    return folder


@pytest.fixture(name="page_origin", scope="module")
def fixture_page_origin(page_dir: Path) -> Iterator[str]:
    """The page's own origin (another port than the service's)."""
    with demo_page.static_origin(page_dir) as origin:
        yield origin


@pytest.fixture(name="api_key", scope="module")
def fixture_api_key() -> tuple[str, str]:
    """A caller key and its AUTH_API_KEYS entry."""
    return new_api_key("agents-sdk")


@pytest.fixture(name="emulator", scope="module")
def fixture_emulator() -> Iterator[ServiceProcess]:
    """The upstream: `python -m service emulator` on its own port (a real WebRTC peer)."""
    with emulator_process() as process:
        yield process


@pytest.fixture(name="service", scope="module")
def fixture_service(
    api_key: tuple[str, str], page_origin: str, emulator: ServiceProcess
) -> Iterator[ServiceProcess]:
    """The service with an OpenAI key, forwarding to the emulator, allowing the page's origin."""
    service = ServiceProcess(
        {
            "AUTH_MODE": "api_key",
            "AUTH_API_KEYS": api_key[1],
            "OPENAI_API_KEY": "sk-test-agents-sdk-not-a-key",
            "OPENAI_BASE_URL": f"{emulator.url}/v1",
            "CORS_ALLOW_ORIGINS": page_origin,
            "POLICY_ALLOWED_MODELS": f"gpt-realtime-2,{MODEL}",
            "POLICY_DEFAULT_MODEL": "gpt-realtime-2",
            "POLICY_ALLOWED_VOICES": f"alloy,{POLICY_VOICE}",
            "POLICY_DEFAULT_VOICE": POLICY_VOICE,
            "WORKERS": "1",
        }
    )
    try:
        service.wait_ready()
        yield service
    finally:
        service.stop()


@pytest.fixture(name="browser", scope="module")
def fixture_browser() -> Iterator[Browser]:
    """Debian's headless Chromium with a fake microphone it may use without asking."""
    with demo_page.chromium(MEDIA_ARGS) as browser:
        yield browser


class Call:
    """The page's call: its id, and the requests the SDKs sent to the service."""

    def __init__(self, page: Page, call_id: str, sent: list[Request]) -> None:
        self.page = page
        self.call_id = call_id
        self.sent = sent

    def state(self) -> dict[str, Any]:
        """What the page knows: the SDK's status, the peer's state, events and errors."""
        state: dict[str, Any] = self.page.evaluate("window.agents.state()")
        return state


@pytest.fixture(name="call", scope="module")
def fixture_call(
    browser: Browser, page_origin: str, service: ServiceProcess, api_key: tuple[str, str]
) -> Iterator[Call]:
    """The SDK connected through the service from the page's origin (connect resolved)."""
    with demo_page.fresh_page(browser) as page:
        sent: list[Request] = []
        page.on("request", lambda r: sent.append(r) if r.url.startswith(service.url) else None)
        page.goto(f"{page_origin}/index.html")
        page.wait_for_function("document.getElementById('ready').textContent === 'ready'")
        options = {
            "service": service.url,
            "key": api_key[0],
            "model": MODEL,
            "voice": AGENT_VOICE,
            "instructions": INSTRUCTIONS,
        }
        call_id = page.evaluate("(options) => window.agents.connect(options)", options)
        yield Call(page, call_id, sent)


def emulator_call(emulator: ServiceProcess, call_id: str) -> dict[str, Any]:
    """The emulator's record of the call: state, session, browser overrides and their reverts."""
    response = httpx.get(f"{emulator.url}/_emulator/calls/{call_id}", timeout=5)
    response.raise_for_status()
    record: dict[str, Any] = response.json()
    return record


def reverted(record: dict[str, Any]) -> bool:
    """The SDK's two updates (its config, then its tracing) arrived and each was reverted."""
    overrides = record["overrides"]
    return len(overrides) >= 2 and all(o["reverted_after_ms"] is not None for o in overrides)


@pytest.fixture(name="after_revert", scope="module")
def fixture_after_revert(call: Call, emulator: ServiceProcess) -> dict[str, Any]:
    """The emulator's record once the supervisor has reverted every SDK update."""
    wait_until(
        lambda: reverted(emulator_call(emulator, call.call_id)), GUARD, "the SDK's updates reverted"
    )
    return emulator_call(emulator, call.call_id)


class TestAgentsSdkThroughTheService:
    """`RealtimeSession` + `OpenAIRealtimeWebRTC` with the service as `baseUrl`."""

    def test_sdk_creates_the_call_with_the_query_model(
        self, call: Call, emulator: ServiceProcess, service: ServiceProcess
    ) -> None:
        """The SDK's bare offer to `…/calls?model=` made a call with that model, cross-origin."""
        assert re.fullmatch(r"rtc_[A-Za-z0-9_-]+", call.call_id), call.call_id
        offer = next(r for r in call.sent if r.method == "POST" and "/realtime/calls" in r.url)
        assert offer.url == f"{service.url}/v1/realtime/calls?model={MODEL}"
        assert offer.headers["content-type"] == "application/sdp"
        assert offer.headers["x-openai-agents-sdk"].startswith("openai-agents-sdk.")
        assert emulator_call(emulator, call.call_id)["session"]["model"] == MODEL

    def test_policy_values_hold_after_the_sdks_update(self, after_revert: dict[str, Any]) -> None:
        """Voice, tools and tracing are the policy's again; the agent's instructions stay."""
        session = after_revert["session"]
        assert session["audio"]["output"]["voice"] == POLICY_VOICE
        assert session.get("tools") in (None, [])
        assert session.get("tracing") is None
        assert session["instructions"] == INSTRUCTIONS
        assert session["model"] == MODEL

    def test_call_stays_up_after_the_revert(
        self,
        call: Call,
        after_revert: dict[str, Any],
        emulator: ServiceProcess,
        service: ServiceProcess,
        api_key: tuple[str, str],
    ) -> None:
        """After the reverts, the service still supervises the call and the SDK is connected."""
        state = httpx.get(
            f"{service.url}/v1/realtime/calls/{call.call_id}",
            headers={"Authorization": f"Bearer {api_key[0]}"},
            timeout=5,
        ).json()
        assert state["state"] == "active", state
        assert state["overrides"], state
        assert {o["outcome"] for o in state["overrides"]} == {"reverted"}, state
        assert emulator_call(emulator, call.call_id)["ended"] is None
        page = call.state()
        assert (page["status"], page["peer"]) == ("connected", "connected"), page
        assert not [e for e in page["errors"] if "cannot_update" in e], page["errors"]

    def test_openai_sdk_hangs_up_from_the_page(
        self, call: Call, after_revert: dict[str, Any], emulator: ServiceProcess
    ) -> None:
        """`client.realtime.calls.hangup` in the browser (X-Stainless-* headers) ends the call."""
        assert call.page.evaluate("window.agents.hangUp()") == "ok"
        hangup = next(r for r in call.sent if r.url.endswith(f"/{call.call_id}/hangup"))
        assert "x-stainless-lang" in hangup.headers
        wait_until(
            lambda: emulator_call(emulator, call.call_id)["ended"] is not None,
            GUARD,
            "the call ended",
        )


class TestSdkDefaultModel:
    """A session not told the model: the SDK names its own default, which cannot apply."""

    def test_call_stays_up_when_the_sdk_names_another_model(
        self,
        browser: Browser,
        page_origin: str,
        service: ServiceProcess,
        emulator: ServiceProcess,
        api_key: tuple[str, str],
    ) -> None:
        """The SDK's update naming its default model is refused as OpenAI refuses it, the
        call keeps its model, and the supervisor does not hang up (it did, while the
        emulator applied model changes)."""
        options = {
            "service": service.url,
            "key": api_key[0],
            "model": MODEL,
            "voice": AGENT_VOICE,
            "instructions": INSTRUCTIONS,
            "sdkDefaultModel": True,
        }
        with demo_page.fresh_page(browser) as page:
            page.goto(f"{page_origin}/index.html")
            page.wait_for_function("document.getElementById('ready').textContent === 'ready'")
            # connect() waits for an acknowledgement the refused update never gets; the
            # test waits on what the page and the emulator show instead.
            page.evaluate("(o) => { window.agents.connect(o).catch(() => {}); }", options)
            page.wait_for_function(
                "window.agents.state().errors.some((e) => e.includes('cannot_update_model'))",
                timeout=GUARD * 1000,
            )
            call_id = page.evaluate("window.agents.state().callId")
            wait_until(
                lambda: reverted_once(emulator_call(emulator, call_id)),
                GUARD,
                "the SDK's tracing reverted",
            )
            record = emulator_call(emulator, call_id)
            state = httpx.get(
                f"{service.url}/v1/realtime/calls/{call_id}",
                headers={"Authorization": f"Bearer {api_key[0]}"},
                timeout=5,
            ).json()
            assert record["session"]["model"] == MODEL
            assert record["ended"] is None, record
            assert state["state"] == "active", state
            assert {o["outcome"] for o in state["overrides"]} == {"reverted"}, state


def reverted_once(record: dict[str, Any]) -> bool:
    """At least one browser update arrived, and each was reverted."""
    overrides = record["overrides"]
    return bool(overrides) and all(o["reverted_after_ms"] is not None for o in overrides)


class TestCorsCoversTheInstalledSdks:
    """The CORS allow list names every header the installed SDKs can send from a browser."""

    def test_every_stainless_header_of_the_openai_sdk_is_allowed(self, node: str) -> None:
        """Each `X-Stainless-*` the installed openai JS SDK's source names is in CORS_ALLOWED."""
        source = "".join(
            path.read_text(encoding="utf-8")
            for path in (NODE_DIR / "node_modules" / "openai").rglob("*.mjs")
        )
        names = set(re.findall(r"'(X-Stainless-[A-Za-z-]+)'", source))
        assert len(names) >= 5, names  # the pattern still finds the SDK's headers
        assert names <= set(CORS_ALLOWED), names - set(CORS_ALLOWED)

    def test_the_agents_sdk_header_is_allowed(self, node: str) -> None:
        """The header the installed Agents SDK sends with its offer is in CORS_ALLOWED."""
        utils = NODE_DIR / "node_modules" / "@openai" / "agents-realtime" / "dist" / "utils.mjs"
        names = set(re.findall(r"'(X-OpenAI-[A-Za-z-]+)'", utils.read_text(encoding="utf-8")))
        assert names == {"X-OpenAI-Agents-SDK"}, names
        assert names <= set(CORS_ALLOWED)


class TestDocumentedOptions:
    """docs/clients.md's "Agents SDK" block configures the SDK as the tested page does."""

    def test_docs_block_sets_the_options_the_page_sets(self) -> None:
        """`baseUrl` with `?model=`, `useInsecureApiKey`, `model`, `connect({ apiKey })` in both."""
        docs = (ROOT / "docs" / "clients.md").read_text(encoding="utf-8")
        section = docs.split("## Agents SDK\n", 1)[1].split("\n## ", 1)[0]
        fenced = re.search(r"^```js\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
        assert fenced is not None, "the section has a js block"
        block = fenced[1]
        page = (NODE_DIR / "agents_page.mjs").read_text(encoding="utf-8")
        for option in (
            "new OpenAIRealtimeWebRTC({",
            "/v1/realtime/calls?model=$",
            "useInsecureApiKey: true,",
            "new RealtimeSession(agent, {",
            "connect({ apiKey:",
        ):
            assert option in block, option
            assert option in page, option
        assert re.search(r"^\s+model,", block, re.MULTILINE), "the docs pass the same model"
        assert "{ model })," in page, "the page passes the same model"
