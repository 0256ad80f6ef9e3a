"""Server-created calls from the demo page: a real Chromium completes a real WebRTC call.

Chromium (fake microphone, media permission granted) loads the page from one
origin and calls the service on another. The service holds the OpenAI key and
forwards to the emulator, which runs as its own process (`python -m service
emulator`, a real aiortc peer) so that its debug route shows how each call ended.
The page posts its offer to the service and never sees a secret. While the call
lasts the page polls its state from the service and shows it in a panel.

One more service runs on its in-process emulator (`UPSTREAM_EMULATOR=true`) and
serves the page itself, opened from its `/`: minting a secret there first must
not change what Connect does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, Response, expect

from service.auth import new_api_key
from tests import demo_page
from tests.paths import CLIENT_SECRETS, POLICY, SESSIONS
from tests.servers import ServiceProcess, emulator_process, wait_until

CallKind = Literal["realtime", "live"]
MEDIA_ARGS = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")
CREATE_PATH = {"realtime": "/v1/realtime/calls", "live": "/v1/live/sessions"}
SESSION_EVENT = {"realtime": "session.created", "live": "session.started"}
EMULATOR_TRANSCRIPT = "Hello from the emulator."
CONNECT_TIMEOUT_MS = 20_000  # ICE and DTLS on loopback take ~1.5 s; 2 cores under a suite, more


@pytest.fixture(name="api_key", scope="module")
def fixture_api_key() -> tuple[str, str]:
    """A caller key and its AUTH_API_KEYS entry."""
    return new_api_key("demo-calls")


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
    """The service with an OpenAI key, forwarding to the emulator, allowing the page's origin."""
    service = ServiceProcess(
        {
            "AUTH_MODE": "api_key",
            "AUTH_API_KEYS": api_key[1],
            "OPENAI_API_KEY": "sk-test-demo-calls-not-a-key",
            "OPENAI_BASE_URL": f"{emulator.url}/v1",
            "DEMO_PAGE": "true",
            "CORS_ALLOW_ORIGINS": page_origin,
            "POLICY_ALLOWED_MODELS": "gpt-realtime-2,gpt-realtime-2.1-mini",
            "POLICY_DEFAULT_MODEL": "gpt-realtime-2.1-mini",
            "POLICY_ALLOWED_VOICES": "alloy,marin",
            "POLICY_DEFAULT_VOICE": "marin",
            "WORKERS": "1",
        }
    )
    try:
        service.wait_ready()
        api_origins.append(service.url)
        yield service
    finally:
        service.stop()


@pytest.fixture(name="emulated_service", scope="module")
def fixture_emulated_service(api_key: tuple[str, str]) -> Iterator[ServiceProcess]:
    """The service on its in-process emulator, serving the demo on its own origin."""
    service = ServiceProcess(
        {
            "AUTH_MODE": "api_key",
            "AUTH_API_KEYS": api_key[1],
            "UPSTREAM_EMULATOR": "true",
            "DEMO_PAGE": "true",
            "POLICY_ALLOWED_MODELS": "gpt-realtime-2,gpt-realtime-2.1-mini",
            "POLICY_DEFAULT_MODEL": "gpt-realtime-2.1-mini",
            "WORKERS": "1",
        }
    )
    try:
        service.wait_ready()
        yield service
    finally:
        service.stop()


@pytest.fixture(name="policy", scope="module")
def fixture_policy(service: ServiceProcess, api_key: tuple[str, str]) -> dict[str, Any]:
    """The service's /v1/policy, which must offer both kinds of call."""
    response = httpx.get(
        f"{service.url}{POLICY}", headers={"Authorization": f"Bearer {api_key[0]}"}
    )
    response.raise_for_status()
    policy: dict[str, Any] = response.json()
    assert set(policy.get("calls") or ()) == {"realtime", "live"}, policy.get("calls")
    return policy


@pytest.fixture(name="browser", scope="module")
def fixture_browser() -> Iterator[Browser]:
    """Debian's headless Chromium with a fake microphone it may use without asking."""
    with demo_page.chromium(MEDIA_ARGS) as browser:
        yield browser


@pytest.fixture(name="page")
def fixture_page(browser: Browser) -> Iterator[Page]:
    """A fresh page in its own context (no shared cache or storage)."""
    with demo_page.fresh_page(browser) as page:
        yield page


def open_demo(page: Page, page_origin: str, service: ServiceProcess, key: str) -> None:
    """Open the page, type the key and load the policy; returns once calls are on offer."""
    page.goto(demo_page.demo_url(page_origin, service.url))
    page.fill("#api-key", key)
    page.click("#load-policy")
    expect(page.locator("#call-type")).to_be_visible()
    expect(page.locator("#connect")).to_be_enabled()


def choices(policy: dict[str, Any], kind: CallKind) -> dict[str, Any]:
    """The policy's model and voice lists for this kind of call (Live's are under `live`)."""
    return policy["live"] if kind == "live" else policy


def other_than_default(choice: dict[str, Any]) -> str:
    """An allowed value that is not the default when there is one: the page must send it."""
    allowed: list[str] = choice["allowed"]
    return next((value for value in allowed if value != choice["default"]), allowed[0])


def is_create(request: Request, kind: CallKind) -> bool:
    return request.method == "POST" and request.url.endswith(CREATE_PATH[kind])


def created_call_id(response: Response, kind: CallKind) -> str:
    """The call id as the service's answer names it: Location (Realtime) or session.id (Live)."""
    if kind == "live":
        call_id: str = response.json()["session"]["id"]
        return call_id
    location = response.headers["location"]
    assert location.startswith("/v1/realtime/calls/"), location
    return location.rsplit("/", 1)[1]


def emulator_call(emulator: ServiceProcess, call_id: str) -> dict[str, Any]:
    """The emulator's record of a call, cut to `{"state", "ended", "kind"}`."""
    response = httpx.get(f"{emulator.url}/_emulator/calls/{call_id}", timeout=5)
    response.raise_for_status()
    record: dict[str, Any] = response.json()
    return {key: record[key] for key in ("state", "ended", "kind")}


def calls_answered(emulator: ServiceProcess) -> int:
    """How many offers the emulator has answered (its `call_answered` log lines)."""
    return emulator.log_path.read_text(errors="replace").count('"call_answered"')


def see_call_state(
    page: Page, service: ServiceProcess, key: str, kind: CallKind, call_id: str
) -> None:
    """The panel fills from the call's state; on Realtime, an override the page sends is
    reverted by the service, and the panel shows its time to revert."""
    response = httpx.get(
        f"{service.url}{CREATE_PATH[kind]}/{call_id}", headers={"Authorization": f"Bearer {key}"}
    )
    response.raise_for_status()
    state = response.json()
    expect(page.locator("#call-panel")).to_be_visible()
    expect(page.locator("#call-state")).to_have_text("active")
    expect(page.locator("#call-fixed li")).to_have_text(state["fixed"])
    expect(page.locator("#call-deadline")).to_have_text(re.compile(r"^\d+:\d\d left \(hung up at "))
    expect(page.locator("#call-usage")).to_contain_text(" s")
    # What the call cost so far, in dollars (a GPT-Live call is billed from its start).
    expect(page.locator("#call-usage")).to_contain_text(re.compile(r", \$\d+\.\d{6}$"))
    if kind == "live":
        expect(page.locator("#try-override")).to_be_hidden()
        return
    assert "tracing" in state["fixed"]
    expect(page.locator("#call-usage")).to_contain_text("tokens")
    expect(page.locator("#call-overrides li")).to_have_count(0)
    page.click("#try-override")
    expect(page.locator("#call-overrides li")).to_have_text(
        [re.compile(r"^tracing: reverted in \d+ ms$")]
    )


@pytest.mark.browser
class TestServerCreatedCalls:
    """Connect, talk and hang up through calls the service creates."""

    @pytest.mark.parametrize("kind", ["realtime", "live"])
    def test_call_connects_and_hangs_up_through_the_service(
        self,
        kind: CallKind,
        page: Page,
        page_origin: str,
        service: ServiceProcess,
        emulator: ServiceProcess,
        policy: dict[str, Any],
        api_key: tuple[str, str],
        tmp_path: Path,
    ) -> None:
        """The peer connects, the session event arrives, and Hang up ends the call upstream."""
        to_service: list[Request] = []
        page.on(
            "request", lambda r: to_service.append(r) if r.url.startswith(service.url) else None
        )
        open_demo(page, page_origin, service, api_key[0])
        page.select_option("#call-type", kind)
        model = other_than_default(choices(policy, kind)["models"])
        voice = other_than_default(choices(policy, kind)["voices"])
        expect(page.locator("#voice option")).to_have_text(
            choices(policy, kind)["voices"]["allowed"]
        )
        page.select_option("#model", model)
        page.select_option("#voice", voice)

        with page.expect_response(lambda r: is_create(r.request, kind)) as created:
            page.click("#connect")
        assert created.value.status == (201 if kind == "realtime" else 200)
        offer = created.value.request.post_data_buffer or b""
        assert b"a=candidate:" in offer  # no trickle: the posted offer carries its candidates
        call_id = created_call_id(created.value, kind)

        expect(page.locator("#call-id")).to_have_text(call_id)
        expect(page.locator("#peer-state")).to_have_text("connected", timeout=CONNECT_TIMEOUT_MS)
        transcript = page.locator("#transcript")
        expect(transcript.locator("code", has_text=SESSION_EVENT[kind])).to_have_count(1)
        expect(transcript).to_contain_text(EMULATOR_TRANSCRIPT)  # the fake mic's audio arrived
        session = json.loads(page.locator("#session-json").text_content() or "null")
        assert session["model"] == model
        assert session["audio"]["output"]["voice"] == voice
        assert emulator_call(emulator, call_id) == {
            "state": "connected",
            "ended": None,
            "kind": kind,
        }
        expect(page.locator("#error")).to_be_hidden()
        see_call_state(page, service, api_key[0], kind, call_id)
        demo_page.screenshot(page, tmp_path / f"{kind}-connected.png")

        with page.expect_response(lambda r: r.url.endswith(f"/{call_id}/hangup")) as hung_up:
            page.click("#hangup")
        assert hung_up.value.status == 200
        expect(page.locator("#call-state")).to_have_text("ended")
        expect(page.locator("#peer-state")).to_have_text("closed")
        expect(page.locator("#status")).to_have_text("Hung up.")
        expect(page.locator("#hangup")).to_be_disabled()
        expect(page.locator("#connect")).to_be_enabled()
        wait_until(lambda: emulator_call(emulator, call_id)["ended"] is not None, 10, "call ended")
        assert emulator_call(emulator, call_id) == {
            "state": "closed",
            "ended": "hangup",
            "kind": kind,
        }
        paths = [(r.method, r.url.removeprefix(service.url)) for r in to_service]
        assert all(SESSIONS not in path and CLIENT_SECRETS not in path for _, path in paths)
        assert ("POST", f"{CREATE_PATH[kind]}/{call_id}/hangup") in paths
        assert ("GET", f"{CREATE_PATH[kind]}/{call_id}") in paths  # the panel's polls
        assert re.search(r"\bek_", page.content()) is None  # no secret in the call flow
        demo_page.screenshot(page, tmp_path / f"{kind}-hung-up.png")

    def test_call_type_switches_model_and_voice_lists(
        self,
        page: Page,
        page_origin: str,
        service: ServiceProcess,
        policy: dict[str, Any],
        api_key: tuple[str, str],
    ) -> None:
        """GPT-Live offers policy.live's models and voices; Realtime the top-level lists."""
        open_demo(page, page_origin, service, api_key[0])
        for kind in ("live", "realtime"):
            page.select_option("#call-type", kind)
            for select in ("model", "voice"):
                choice = choices(policy, kind)[f"{select}s"]
                expect(page.locator(f"#{select} option")).to_have_text(choice["allowed"])
                expect(page.locator(f"#{select}")).to_have_value(choice["default"])

    def test_refused_voice_shows_service_message_and_makes_no_call(
        self,
        page: Page,
        page_origin: str,
        service: ServiceProcess,
        emulator: ServiceProcess,
        policy: dict[str, Any],
        api_key: tuple[str, str],
        tmp_path: Path,
    ) -> None:
        """A voice the policy refuses shows the service's 403 message; the emulator gets no call."""
        answered = calls_answered(emulator)
        open_demo(page, page_origin, service, api_key[0])
        page.select_option("#call-type", "realtime")
        assert "robot" not in policy["voices"]["allowed"]
        page.locator("#voice").evaluate("select => select.add(new Option('robot', 'robot'))")
        page.select_option("#voice", "robot")

        with page.expect_response(lambda r: is_create(r.request, "realtime")) as refused:
            page.click("#connect")
        assert refused.value.status == 403
        error = refused.value.json()["error"]
        assert error["code"] == "policy_violation"
        assert "robot" in error["message"]
        expect(page.locator("#error")).to_have_text(error["message"])
        expect(page.locator("#peer-state")).to_have_text("closed")
        expect(page.locator("#result")).to_be_hidden()
        expect(page.locator("#call-id")).to_have_text("")
        expect(page.locator("#hangup")).to_be_disabled()
        assert calls_answered(emulator) == answered
        demo_page.screenshot(page, tmp_path / "call-refused.png")


@pytest.mark.browser
class TestConnectAfterMint:
    """A minted secret is shown, and never changes what Connect does: the Call select decides."""

    @pytest.mark.parametrize("kind", ["realtime", "live"])
    def test_connect_after_mint_creates_the_selected_call(
        self,
        kind: CallKind,
        page: Page,
        emulated_service: ServiceProcess,
        api_key: tuple[str, str],
        tmp_path: Path,
    ) -> None:
        """Mint, then Connect: the selected call is created through the service and connects;
        nothing goes to OpenAI with the secret."""
        to_openai: list[str] = []
        page.on("request", lambda r: to_openai.append(r.url) if "openai.com" in r.url else None)
        page.route(re.compile(r"^https://api\.openai\.com/"), lambda route: route.abort())
        page.goto(f"{emulated_service.url}/")  # the service's root opens its demo
        assert page.url == f"{emulated_service.url}/demo/"
        page.fill("#api-key", api_key[0])
        page.click("#load-policy")
        expect(page.locator("#call-type")).to_be_visible()
        page.select_option("#call-type", "realtime")  # a secret is minted for Realtime
        with page.expect_response(lambda r: r.url.endswith(SESSIONS)) as minted:
            page.click("#mint")
        assert minted.value.status == 200
        expect(page.locator("#secret-info")).to_be_visible()
        expect(page.locator("#connect")).to_be_enabled()
        page.select_option("#call-type", kind)

        with page.expect_response(lambda r: is_create(r.request, kind)) as created:
            page.click("#connect")
        assert created.value.status == (201 if kind == "realtime" else 200)
        call_id = created_call_id(created.value, kind)
        expect(page.locator("#call-id")).to_have_text(call_id)
        expect(page.locator("#peer-state")).to_have_text("connected", timeout=CONNECT_TIMEOUT_MS)
        transcript = page.locator("#transcript")
        expect(transcript.locator("code", has_text=SESSION_EVENT[kind])).to_have_count(1)
        expect(page.locator("#error")).to_be_hidden()
        demo_page.screenshot(page, tmp_path / f"{kind}-after-mint.png")
        with page.expect_response(lambda r: r.url.endswith(f"/{call_id}/hangup")) as hung_up:
            page.click("#hangup")
        assert hung_up.value.status == 200
        assert to_openai == []
