"""The demo's own breaches, undone by the service: a real Chromium, service and emulator.

The page's "Try another voice for one response" sends `response.create` in a
voice the policy refuses, and "Try to add a system message" a
`conversation.item.create` with a system message, both on the call's data
channel. The service (POLICY_INSTRUCTIONS_MODE=server) answers over the
sideband with `response.cancel` for that response and `conversation.item.delete`
for that item; the emulator (its own process, `python -m service emulator`)
records both on the call's timeline, and the call panel lists both overrides.

The emulator holds the call's responses in progress (`POST /_emulator/calls/{id}/hold`)
as OpenAI's stream would be while it speaks: the cancel finds it active on any
machine, and the response ends `cancelled`, not `completed`.

Chromium's data channel is not visible to Playwright, so an init script records
the events the page receives on it (`window.__received`), read by the test only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from service.auth import new_api_key
from tests import demo_page
from tests.servers import ServiceProcess, emulator_process, wait_until

MEDIA_ARGS = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")
CONNECT_TIMEOUT_MS = 20_000  # ICE and DTLS on loopback take ~1.5 s; 2 cores under a suite, more
PANEL_TIMEOUT_MS = 15_000  # the panel polls the call's state every 1.5 s
ALLOWED_VOICES = ["alloy", "marin"]
REFUSED_VOICE = "ash"  # the page's first Realtime voice the policy does not allow
SERVER_INSTRUCTIONS = "You are the demo's assistant; the server sets these instructions."
RECORDER = """
(() => {
  window.__received = [];
  const create = RTCPeerConnection.prototype.createDataChannel;
  RTCPeerConnection.prototype.createDataChannel = function (...args) {
    const channel = create.apply(this, args);
    channel.addEventListener("message", (event) => {
      try { window.__received.push(JSON.parse(event.data)); } catch {}
    });
    return channel;
  };
})();
"""


@pytest.fixture(name="api_key", scope="module")
def fixture_api_key() -> tuple[str, str]:
    """A caller key and its AUTH_API_KEYS entry."""
    return new_api_key("demo-breaches")


@pytest.fixture(name="api_origins", scope="module")
def fixture_api_origins() -> list[str]:
    """What the page's server lists as DEMO_API_ORIGINS (filled by the service fixture)."""
    return []


@pytest.fixture(name="page_origin", scope="module")
def fixture_page_origin(api_origins: list[str]) -> Iterator[str]:
    """service/static/demo on its own port: the page's origin, never the service's."""
    with demo_page.demo_origin(api_origins) as origin:
        yield origin


@pytest.fixture(name="emulator", scope="module")
def fixture_emulator() -> Iterator[ServiceProcess]:
    """The upstream: `python -m service emulator` on its own port, logging to a file."""
    with emulator_process() as process:
        yield process


@pytest.fixture(name="service", scope="module")
def fixture_service(
    api_key: tuple[str, str], page_origin: str, emulator: ServiceProcess, api_origins: list[str]
) -> Iterator[ServiceProcess]:
    """The service setting the instructions itself, with a voice allow-list, on the emulator."""
    service = ServiceProcess(
        {
            "AUTH_MODE": "api_key",
            "AUTH_API_KEYS": api_key[1],
            "OPENAI_API_KEY": "sk-test-demo-breaches-not-a-key",
            "OPENAI_BASE_URL": f"{emulator.url}/v1",
            "CORS_ALLOW_ORIGINS": page_origin,
            "POLICY_ALLOWED_VOICES": ",".join(ALLOWED_VOICES),
            "POLICY_DEFAULT_VOICE": "marin",
            "POLICY_INSTRUCTIONS": SERVER_INSTRUCTIONS,
            "POLICY_INSTRUCTIONS_MODE": "server",
            "WORKERS": "1",
        }
    )
    try:
        service.wait_ready()
        api_origins.append(service.url)
        yield service
    finally:
        service.stop()


@pytest.fixture(name="page")
def fixture_page() -> Iterator[Page]:
    """A fresh page (fake microphone, media allowed) recording its data channel's events."""
    with demo_page.chromium(MEDIA_ARGS) as browser, demo_page.fresh_page(browser) as page:
        page.add_init_script(RECORDER)
        yield page


def emulator_record(emulator: ServiceProcess, call_id: str) -> dict[str, Any]:
    """The emulator's record of the call (`GET /_emulator/calls/{id}`)."""
    response = httpx.get(f"{emulator.url}/_emulator/calls/{call_id}", timeout=5)
    response.raise_for_status()
    record: dict[str, Any] = response.json()
    return record


def received(page: Page, event_type: str) -> list[dict[str, Any]]:
    """The events of this type the page received on its data channel, in order."""
    events: list[dict[str, Any]] = page.evaluate(
        "(type) => window.__received.filter((event) => event.type === type)", event_type
    )
    return events


def sideband_events(emulator: ServiceProcess, call_id: str) -> list[dict[str, Any]]:
    """The client events the call received from its sideband (the service's)."""
    timeline = emulator_record(emulator, call_id)["client_events"]
    return [entry for entry in timeline if entry["source"] == "sideband"]


@pytest.mark.browser
class TestDemoBreaches:
    """The demo's response-voice and system-message buttons, undone by the service."""

    def test_response_voice_is_cancelled_and_system_item_deleted(
        self,
        page: Page,
        page_origin: str,
        service: ServiceProcess,
        emulator: ServiceProcess,
        api_key: tuple[str, str],
        tmp_path: Path,
    ) -> None:
        """The page's response.create in a refused voice is cancelled (it ends `cancelled`)
        and its system message deleted, each by id over the sideband; the panel lists both."""
        page.goto(demo_page.demo_url(page_origin, service.url))
        page.fill("#api-key", api_key[0])
        page.click("#load-policy")
        expect(page.locator("#call-type")).to_be_visible()
        page.select_option("#call-type", "realtime")
        page.click("#connect")
        expect(page.locator("#peer-state")).to_have_text("connected", timeout=CONNECT_TIMEOUT_MS)
        call_id = page.locator("#call-id").text_content() or ""
        assert call_id.startswith("rtc_"), call_id
        wait_until(lambda: emulator_record(emulator, call_id)["listeners"] >= 1, 10, "sideband")
        hold = f"{emulator.url}/_emulator/calls/{call_id}/hold"
        held = httpx.post(hold, json={"responses": True}, timeout=5)
        assert held.json() == {"hold_responses": True}
        transcript = page.locator("#transcript")

        expect(page.locator("#try-response-voice")).to_be_enabled()
        page.click("#try-response-voice")
        # The microphone's turn gets the emulator's own response too (`completed`).
        expect(transcript.locator("p.event", has_text="response.done cancelled")).to_have_count(1)
        # The emulator also answers the microphone's turn (turn detection's own response, in
        # the session's voice): the page's is the one in the refused voice.
        voiced = [
            e
            for e in received(page, "response.created")
            if e["response"]["audio"]["output"]["voice"] == REFUSED_VOICE
        ]
        [created] = voiced
        response_id = created["response"]["id"]
        [done] = [e for e in received(page, "response.done") if e["response"]["id"] == response_id]
        assert created["response"]["audio"]["output"]["voice"] == REFUSED_VOICE
        assert REFUSED_VOICE not in ALLOWED_VOICES
        assert (done["response"]["id"], done["response"]["status"]) == (response_id, "cancelled")
        cancels = [e for e in sideband_events(emulator, call_id) if e["type"] == "response.cancel"]
        assert [e.get("response_id") for e in cancels] == [response_id]
        assert "response.done" in cancels[0]["answered"]

        page.click("#try-system-item")
        expect(transcript.locator("code", has_text="conversation.item.deleted")).to_have_count(1)
        added = [e for e in received(page, "conversation.item.added") if e["item"].get("role")]
        system = [e["item"]["id"] for e in added if e["item"]["role"] == "system"]
        assert len(system) == 1, added
        [deleted] = received(page, "conversation.item.deleted")
        assert deleted["item_id"] == system[0]
        deletes = [
            e for e in sideband_events(emulator, call_id) if e["type"] == "conversation.item.delete"
        ]
        assert [e.get("item_id") for e in deletes] == system

        expect(page.locator("#call-overrides li")).to_have_text(
            [re.compile(r"^response \S*voice\S*: cancelled$"), "item role: deleted"],
            timeout=PANEL_TIMEOUT_MS,
        )
        expect(page.locator("#error")).to_be_hidden()
        demo_page.screenshot(page, tmp_path / "breaches-undone.png")
        page.click("#hangup")
        expect(page.locator("#status")).to_have_text("Hung up.")
