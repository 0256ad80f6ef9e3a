"""The emulator's call routes over real sockets: `python -m service emulator`, an aiortc browser.

Realtime calls (multipart or bare SDP), Live sessions, hang-ups, the debug
route and both sideband WebSockets, answered the way OpenAI answers them.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from emulator import create_emulator
from tests.servers import ServiceProcess, free_port
from tests.test_webrtc_peer import LIVE_SESSION, REALTIME_SESSION, WAIT_S, BrowserPeer

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]
KEY = {"Authorization": "Bearer sk-emulator-test"}
SDP_HEADERS = {**KEY, "Content-Type": "application/sdp"}
REALTIME_CALLS = "/v1/realtime/calls"
LIVE_SESSIONS = "/v1/live/sessions"
# websockets logs the handshake's headers, key included, at DEBUG: not into the
# suite's logs, which test_log_scan checks for secrets.
SIDEBAND_LOG = logging.getLogger("tests.sideband_client")
SIDEBAND_LOG.setLevel(logging.WARNING)


@pytest.fixture(name="emulator", scope="module")
def fixture_emulator() -> Iterator[ServiceProcess]:
    """The emulator on its own, as `python -m service emulator` runs it."""
    port = free_port()
    process = ServiceProcess({"PORT": str(port)}, ("emulator", "--port", str(port)))
    try:
        process.wait_ready(path="/healthz")
        yield process
    finally:
        assert process.stop() == 0


@pytest.fixture(name="http")
async def fixture_http(emulator: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the emulator."""
    async with httpx.AsyncClient(base_url=emulator.url, timeout=WAIT_S) as client:
        yield client


@pytest.fixture(name="browser")
async def fixture_browser() -> AsyncIterator[BrowserPeer]:
    """A browser-side aiortc peer, closed afterwards."""
    peer = BrowserPeer()
    yield peer
    await peer.close()


def sideband(url: str, headers: dict[str, str]) -> connect:
    """A sideband client connection (the service's role), its handshake unlogged."""
    return connect(url, additional_headers=headers, open_timeout=WAIT_S, logger=SIDEBAND_LOG)


def ws_url(emulator: ServiceProcess, path: str) -> str:
    """The emulator's WebSocket URL for a path."""
    return emulator.url.replace("http://", "ws://") + path


async def create_realtime(http: httpx.AsyncClient, browser: BrowserPeer) -> httpx.Response:
    """Post the browser's offer as multipart with a session, as the service will."""
    files: Any = {
        "sdp": (None, await browser.offer(), "application/sdp"),
        "session": (None, orjson.dumps(REALTIME_SESSION), "application/json"),
    }
    return await http.post(REALTIME_CALLS, files=files, headers=KEY)


async def create_live(http: httpx.AsyncClient, browser: BrowserPeer) -> dict[str, Any]:
    """Create a Live session from the browser's offer; its JSON answer."""
    body = {"session": LIVE_SESSION, "transport": {"type": "webrtc", "sdp": await browser.offer()}}
    response = await http.post(LIVE_SESSIONS, json=body, headers=KEY)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def connected(browser: BrowserPeer, answer_sdp: str) -> None:
    """Apply the answer and wait for the peer connection to connect."""
    await browser.apply(answer_sdp)
    async with asyncio.timeout(WAIT_S):
        await browser.connected.wait()


async def next_message(ws: ClientConnection, event_type: str) -> dict[str, Any]:
    """The next sideband event of this type (others skipped), within WAIT_S."""
    async with asyncio.timeout(WAIT_S):
        while True:
            event: dict[str, Any] = orjson.loads(await ws.recv())
            if event["type"] == event_type:
                return event


def assert_error(response: httpx.Response, status: int, code: str | None) -> dict[str, Any]:
    """The response is OpenAI's error envelope with this status and code."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["code"] == code
    return error


class TestRealtimeCalls:
    """`POST /v1/realtime/calls`."""

    async def test_multipart_answers_201_and_connects(
        self, http: httpx.AsyncClient, browser: BrowserPeer
    ) -> None:
        """Multipart `sdp` + `session`: 201, SDP answer, Location; the call connects."""
        response = await create_realtime(http, browser)
        assert response.status_code == 201, response.text
        assert response.headers["content-type"].startswith("application/sdp")
        assert response.headers["location"].startswith(f"{REALTIME_CALLS}/rtc_")
        await connected(browser, response.text)
        event = await browser.next_event("session.created")
        assert event["session"]["audio"]["output"]["voice"] == "marin"

    async def test_bare_sdp_answers_201(
        self, http: httpx.AsyncClient, browser: BrowserPeer
    ) -> None:
        """A bare `application/sdp` offer is answered and the call opens."""
        offer = await browser.offer()
        response = await http.post(REALTIME_CALLS, content=offer, headers=SDP_HEADERS)
        assert response.status_code == 201, response.text
        await connected(browser, response.text)
        assert (await browser.next_event("session.created"))["session"]["type"] == "realtime"

    async def test_missing_sdp_part_is_invalid_sdp(self, http: httpx.AsyncClient) -> None:
        """Multipart without an `sdp` part is a 400 `invalid_sdp`."""
        files: Any = {"session": (None, b"{}", "application/json")}
        response = await http.post(REALTIME_CALLS, files=files, headers=KEY)
        assert assert_error(response, 400, "invalid_sdp")["param"] == "sdp"

    async def test_malformed_multipart_is_invalid_sdp(self, http: httpx.AsyncClient) -> None:
        """A multipart body without a boundary is a 400 `invalid_sdp`, not a crash."""
        headers = {**KEY, "Content-Type": "multipart/form-data"}
        response = await http.post(REALTIME_CALLS, content=b"v=0\r\n", headers=headers)
        assert_error(response, 400, "invalid_sdp")

    async def test_session_part_not_json_is_400(
        self, http: httpx.AsyncClient, browser: BrowserPeer
    ) -> None:
        """A `session` part that is not a JSON object is a 400 naming `session`."""
        files: Any = {
            "sdp": (None, await browser.offer(), "application/sdp"),
            "session": (None, b"[1]", "application/json"),
        }
        response = await http.post(REALTIME_CALLS, files=files, headers=KEY)
        assert assert_error(response, 400, "invalid_type")["param"] == "session"

    @pytest.mark.parametrize(
        ("content_type", "body"),
        [("application/sdp", b"hello"), ("text/plain", b"v=0\r\n"), ("application/sdp", b"")],
    )
    async def test_non_sdp_body_is_invalid_sdp(
        self, http: httpx.AsyncClient, content_type: str, body: bytes
    ) -> None:
        """A body that is not SDP, or not sent as SDP, is a 400 `invalid_sdp`."""
        headers = {**KEY, "Content-Type": content_type}
        response = await http.post(REALTIME_CALLS, content=body, headers=headers)
        assert_error(response, 400, "invalid_sdp")

    async def test_missing_key_is_401(self, http: httpx.AsyncClient) -> None:
        """Without a key header the emulator answers 401, as OpenAI does."""
        headers = {"Content-Type": "application/sdp"}
        response = await http.post(REALTIME_CALLS, content=b"v=0\r\n", headers=headers)
        assert_error(response, 401, "missing_api_key")


class TestLiveSessions:
    """`POST /v1/live/sessions`."""

    async def test_answers_json_and_starts(
        self, http: httpx.AsyncClient, browser: BrowserPeer
    ) -> None:
        """The answer is `{session: {id}, transport: {webrtc, sdp}}`; `session.started` arrives."""
        answer = await create_live(http, browser)
        assert answer["session"]["id"].startswith("sess_")
        assert answer["transport"]["type"] == "webrtc"
        await connected(browser, answer["transport"]["sdp"])
        event = await browser.next_event("session.started")
        assert event["session"]["id"] == answer["session"]["id"]

    @pytest.mark.parametrize(
        ("body", "param"),
        [
            ({"session": {}, "transport": {"type": "webrtc", "sdp": "v=0"}}, "session.model"),
            ({"session": {"model": "gpt-live-1"}, "transport": {"type": "ws"}}, "transport.type"),
        ],
    )
    async def test_invalid_request_is_400(
        self, http: httpx.AsyncClient, body: dict[str, Any], param: str
    ) -> None:
        """A missing model or a non-WebRTC transport is a 400 naming the field."""
        response = await http.post(LIVE_SESSIONS, json=body, headers=KEY)
        assert response.status_code == 400
        assert response.json()["error"]["param"] == param

    async def test_missing_key_is_401(self, http: httpx.AsyncClient) -> None:
        """Without a key header the emulator answers 401."""
        response = await http.post(LIVE_SESSIONS, json={})
        assert_error(response, 401, "missing_api_key")


class TestHangup:
    """Both hang-ups, and the debug route that records them."""

    async def test_realtime_hangup_is_recorded(
        self, http: httpx.AsyncClient, browser: BrowserPeer
    ) -> None:
        """A Realtime hang-up answers 200, closes the browser's channel and is on record."""
        response = await create_realtime(http, browser)
        await connected(browser, response.text)
        location = response.headers["location"]
        call_id = location.rsplit("/", 1)[1]
        assert (await http.get(f"/_emulator/calls/{call_id}")).json()["state"] == "connected"
        assert (await http.post(f"{location}/hangup", headers=KEY)).status_code == 200
        async with asyncio.timeout(WAIT_S):
            await browser.channel_closed.wait()
        record = (await http.get(f"/_emulator/calls/{call_id}")).json()
        assert {key: record[key] for key in ("state", "ended", "kind")} == {
            "state": "closed",
            "ended": "hangup",
            "kind": "realtime",
        }
        assert record["ended_at_ms"] >= 0

    async def test_live_hangup_is_recorded(
        self, http: httpx.AsyncClient, browser: BrowserPeer
    ) -> None:
        """A Live hang-up answers 200 and is on record."""
        session_id = (await create_live(http, browser))["session"]["id"]
        hangup = await http.post(f"{LIVE_SESSIONS}/{session_id}/hangup", headers=KEY)
        assert hangup.status_code == 200
        record = (await http.get(f"/_emulator/calls/{session_id}")).json()
        assert record["ended"] == "hangup"

    @pytest.mark.parametrize(
        "path",
        [
            f"{REALTIME_CALLS}/rtc_unknown/hangup",
            f"{LIVE_SESSIONS}/sess_unknown/hangup",
        ],
    )
    async def test_unknown_call_is_404(self, http: httpx.AsyncClient, path: str) -> None:
        """Hanging up a call the emulator does not hold is a 404."""
        assert_error(await http.post(path, headers=KEY), 404, "call_not_found")

    async def test_debug_route_unknown_is_404(self, http: httpx.AsyncClient) -> None:
        """The debug route knows nothing of a call never made."""
        assert (await http.get("/_emulator/calls/rtc_never")).status_code == 404


class TestSidebands:
    """`/v1/realtime?call_id=` and `/v1/live/sessions/{id}/attach`."""

    async def test_realtime_sideband_sees_and_updates(
        self, emulator: ServiceProcess, http: httpx.AsyncClient, browser: BrowserPeer
    ) -> None:
        """The sideband gets `session.created`; its `session.update` reaches the call."""
        response = await create_realtime(http, browser)
        call_id = response.headers["location"].rsplit("/", 1)[1]
        url = ws_url(emulator, f"/v1/realtime?call_id={call_id}")
        async with sideband(url, KEY) as ws:
            await connected(browser, response.text)
            await next_message(ws, "session.created")
            update = {"type": "session.update", "session": {"instructions": "Be brief."}}
            await ws.send(orjson.dumps(update).decode())
            updated = await next_message(ws, "session.updated")
            seen = await browser.next_event("session.updated")
        assert updated["session"]["instructions"] == "Be brief."
        assert seen["session"]["instructions"] == "Be brief."

    async def test_live_attach_is_trusted(
        self, emulator: ServiceProcess, http: httpx.AsyncClient, browser: BrowserPeer
    ) -> None:
        """The attach socket gets `session.started`, and its `session.update` is not restricted."""
        answer = await create_live(http, browser)
        session_id = answer["session"]["id"]
        url = ws_url(emulator, f"{LIVE_SESSIONS}/{session_id}/attach")
        async with sideband(url, KEY) as ws:
            await connected(browser, answer["transport"]["sdp"])
            await next_message(ws, "session.started")
            update = {"type": "session.update", "session": {"idle_timeout_s": 60}}
            await ws.send(orjson.dumps(update).decode())
            updated = await next_message(ws, "session.updated")
        assert updated["session"]["idle_timeout_s"] == 60

    async def test_sideband_closes_when_call_ends(
        self, emulator: ServiceProcess, http: httpx.AsyncClient, browser: BrowserPeer
    ) -> None:
        """A hang-up ends the sideband with a normal close after `session.closed`."""
        answer = await create_live(http, browser)
        session_id = answer["session"]["id"]
        url = ws_url(emulator, f"{LIVE_SESSIONS}/{session_id}/attach")
        async with sideband(url, KEY) as ws:
            await http.post(f"{LIVE_SESSIONS}/{session_id}/hangup", headers=KEY)
            await next_message(ws, "session.closed")
            async with asyncio.timeout(WAIT_S):
                await ws.wait_closed()
        assert ws.close_code == 1000

    async def test_unknown_call_closes_4404(self, emulator: ServiceProcess) -> None:
        """A sideband for a call the emulator does not hold is closed with 4404."""
        url = ws_url(emulator, "/v1/realtime?call_id=rtc_unknown")
        async with sideband(url, KEY) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(WAIT_S):
                    await ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4404

    async def test_missing_key_is_401(self, emulator: ServiceProcess) -> None:
        """A sideband without a key header is refused in the handshake with 401."""
        url = ws_url(emulator, f"{LIVE_SESSIONS}/sess_x/attach")
        with pytest.raises(InvalidStatus) as refused:
            async with sideband(url, {}):
                pass
        assert refused.value.response.status_code == 401


class TestWithoutWebrtcExtra:
    """The emulator in process, as the production image has it: no aiortc."""

    async def test_call_routes_answer_501_and_mints_still_work(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Call routes answer 501 naming the `webrtc` extra; client secrets still mint."""
        monkeypatch.setitem(sys.modules, "emulator.calls.http", None)
        transport = httpx.ASGITransport(app=create_emulator())
        async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
            refused = await client.post(
                REALTIME_CALLS,
                content=b"v=0\r\n",
                headers={**KEY, "Content-Type": "application/sdp"},
            )
            minted = await client.post(
                "/v1/realtime/client_secrets", json={"session": {"type": "realtime"}}, headers=KEY
            )
        error = assert_error(refused, 501, "webrtc_unavailable")
        assert "`webrtc` extra" in error["message"]
        assert "aiortc" in error["message"]
        assert minted.status_code == 200
        assert minted.json()["value"].startswith("ek_emulator_")
