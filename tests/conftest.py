"""Fixtures: apps built from explicit Settings, OpenAI replaced by respx at the network edge."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import pytest
import respx
from asgi_lifespan import LifespanManager

from service.api import create_app
from service.calls import reattach
from service.config import Settings
from service.core import logs
from service.core.logs import configure
from service.policy import Policy
from tests.contract import (
    assert_valid_call_request,
    assert_valid_ga_request,
    assert_valid_live_request,
    assert_valid_translation_request,
)
from tests.sidebands import ScriptedSideband
from tests.suite_logs import COLLECTION, IN_PROCESS, LOG_DIR_ENV, Collection

API_KEY = "sk-test-SERVERKEY-0123456789abcdefghijklmnop"
BASE_URL = "https://api.openai.test/v1"
UPSTREAM_URL = f"{BASE_URL}/realtime/client_secrets"
TRANSLATION_URL = f"{BASE_URL}/realtime/translations/client_secrets"
CLIENT_SECRET = "ek_test_CLIENTSECRET_0123456789abcdef"
CALLS_URL = f"{BASE_URL}/realtime/calls"
LIVE_URL = f"{BASE_URL}/live/sessions"
HANGUP_URL = rf"{BASE_URL}/(realtime/calls|live/sessions)/[A-Za-z0-9_-]+/hangup"
CALL_ID = "rtc_test_0123456789abcdef"
LIVE_ID = "sess_live_0123456789abcdef"
SDP_OFFER = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE 0 1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n"
    "a=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n"
)
"""A browser's offer as far as the service looks at it (OpenAI's WebRTC stack reads the rest)."""
SDP_ANSWER = "v=0\r\no=- 1 1 IN IP4 203.0.113.7\r\ns=-\r\nt=0 0\r\n"
SERVER_INSTRUCTIONS = "TOP-SECRET-PROMPT: you are Acme's agent."
"""Server instructions: sent upstream, never shown to callers or written to a log."""
MCP_TOKEN = "mcp-TOKEN-do-not-leak-0123"
MCP_HEADER = "hdr-SECRET-do-not-leak-4567"
"""MCP server credentials from the servers file: sent upstream, never shown or logged."""

MakeSettings = Callable[..., Settings]
ClientFor = Callable[[Settings], Awaitable[httpx.AsyncClient]]
"""Opens an HTTP client on a fresh app built from the given Settings."""


COLLECTED_MODULES: set[str] = set()
"""Test modules that collected this run (node ids), noted by `pytest_collectreport`."""
DESELECTED: list[str] = []
"""Tests deselected this run (node ids), noted by `pytest_deselected`."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the log scan (`@pytest.mark.after_suite`) last, after every line it reads was written."""
    items.sort(key=lambda item: item.get_closest_marker("after_suite") is not None)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """Note each test module that collected (tests or a module-level skip), for `Collection`."""
    if report.outcome != "failed" and report.nodeid.endswith(".py"):
        COLLECTED_MODULES.add(report.nodeid)


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Note tests left out by `-k`, `-m`, `--deselect` or `--lf`, for `Collection`."""
    DESELECTED.extend(item.nodeid for item in items)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Say whether this run collected the whole suite (`Collection`), for the log scan."""
    session.config.stash[COLLECTION] = Collection.of(session, COLLECTED_MODULES, DESELECTED)


@pytest.fixture(name="suite_logs", scope="session", autouse=True)
def fixture_suite_logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every log line of the whole suite, in-process and from subprocesses, kept for a scan.

    The service's own JSON logging is configured to write into a file here,
    unscrubbed, and the services tests start as processes log into the same
    folder (`LOG_SCRUB=false`); `tests/test_log_scan.py` reads them all at the
    end, so a secret that code logged would show rather than be masked.
    """
    folder = tmp_path_factory.mktemp("suite-logs")
    os.environ[LOG_DIR_ENV] = str(folder)
    with (folder / IN_PROCESS).open("a", encoding="utf-8") as stream:
        configure("json", "DEBUG", stream=stream, scrub_secrets=False)
        yield folder
        logs.flush()  # the buffered lines, before the file they go to is closed
        stream.flush()


@pytest.fixture(name="attempts")
def fixture_attempts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The backoff exponent of every retry the loop waits for; the waits made instant."""
    seen: list[int] = []

    def instant(attempt: int) -> float:
        seen.append(attempt)
        return 0.0

    monkeypatch.setattr(reattach, "backoff", instant)
    return seen


@pytest.fixture(name="anyio_backend")
def fixture_anyio_backend() -> str:
    """Run async tests on asyncio, the loop the service runs on."""
    return "asyncio"


@pytest.fixture(name="make_settings")
def fixture_make_settings() -> MakeSettings:
    """Build Settings explicitly (no .env), with a policy given as keyword fields."""

    def make(policy: dict[str, Any] | None = None, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "openai_api_key": API_KEY,
            "openai_base_url": BASE_URL,
            "upstream_max_retries": 2,
            "upstream_timeout_seconds": 2.0,
            "workers": 1,
            "auth_mode": "none",
        }
        values.update(overrides)
        return Settings(_env_file=None, policy=Policy(**(policy or {})), **values)

    return make


def call_answer(request: httpx.Request) -> httpx.Response:
    """What OpenAI answers to a valid call: 201, the SDP answer, the call's Location."""
    assert_valid_call_request(request)
    headers = {"Location": f"/v1/realtime/calls/{CALL_ID}", "Content-Type": "application/sdp"}
    return httpx.Response(201, content=SDP_ANSWER.encode(), headers=headers)


def live_answer(request: httpx.Request) -> httpx.Response:
    """What OpenAI answers to a valid Live session: its id and the SDP answer."""
    assert_valid_live_request(json.loads(request.content))
    body = {"session": {"id": LIVE_ID}, "transport": {"type": "webrtc", "sdp": SDP_ANSWER}}
    return httpx.Response(200, json=body)


def ga_answer(request: httpx.Request) -> httpx.Response:
    """What OpenAI answers to a valid mint: the secret and the session echoed with an id."""
    body = json.loads(request.content)
    if request.url.path.endswith("/translations/client_secrets"):
        assert_valid_translation_request(body)
        session = {**body["session"], "id": "sess_test_1", "type": "translation"}
        session.setdefault("audio", {})
        session["expires_at"] = 1_900_000_000
        return httpx.Response(
            200, json={"value": CLIENT_SECRET, "expires_at": 1_900_000_000, "session": session}
        )
    assert_valid_ga_request(body)
    kind = body.get("session", {}).get("type")
    session = {
        **body.get("session", {}),
        "id": "sess_test_1",
        "object": "realtime.transcription_session"
        if kind == "transcription"
        else "realtime.session",
    }
    return httpx.Response(
        200, json={"value": CLIENT_SECRET, "expires_at": 1_900_000_000, "session": session}
    )


@pytest.fixture(name="upstream")
def fixture_upstream() -> respx.MockRouter:
    """OpenAI's GA endpoint, mocked; every body it receives is checked against the schema."""
    router = respx.MockRouter(assert_all_called=False, assert_all_mocked=True)
    router.post(UPSTREAM_URL, name="mint").mock(side_effect=ga_answer)
    router.post(TRANSLATION_URL, name="translation").mock(side_effect=ga_answer)
    router.post(CALLS_URL, name="call").mock(side_effect=call_answer)
    router.post(LIVE_URL, name="live").mock(side_effect=live_answer)
    router.post(url__regex=HANGUP_URL, name="hangup").mock(
        return_value=httpx.Response(200, json={})
    )
    return router


LIFESPAN_GUARD = 30.0
"""How long an app's start-up or shutdown may take before it counts as hung. asgi-lifespan's
default, 5 s, is a bound on how fast the machine is (start-up may fetch a JWKS or reach
Redis); this one only catches a hang."""


def running(app: Any) -> LifespanManager:
    """`app` with its lifespan running (ASGITransport alone skips it), under LIFESPAN_GUARD."""
    return LifespanManager(app, startup_timeout=LIFESPAN_GUARD, shutdown_timeout=LIFESPAN_GUARD)


@asynccontextmanager
async def serving(
    app: Any, peer: tuple[str, int] = ("127.0.0.1", 123)
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on `app` with its lifespan running (ASGITransport alone skips it)."""
    async with (
        running(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app, client=peer),
            base_url="http://proxy.test",
        ) as client,
    ):
        yield client


@pytest.fixture(name="sideband")
def fixture_sideband() -> ScriptedSideband:
    """Every call's sideband, quiet until a test scripts it (tests/sidebands.py)."""
    return ScriptedSideband()


@pytest.fixture(name="client_for")
async def fixture_client_for(
    upstream: respx.MockRouter, sideband: ScriptedSideband
) -> AsyncIterator[ClientFor]:
    """Open an HTTP client on a fresh app for given Settings (lifespan included)."""
    async with AsyncExitStack() as stack:

        async def open_client(settings: Settings) -> httpx.AsyncClient:
            transport = httpx.MockTransport(upstream.async_handler)
            app = create_app(settings, transport=transport, sideband=sideband)
            return await stack.enter_async_context(serving(app))

        yield open_client


@pytest.fixture(name="client")
async def fixture_client(client_for: ClientFor, make_settings: MakeSettings) -> httpx.AsyncClient:
    """A client on the service with the default policy."""
    return await client_for(make_settings())


def sent_body(upstream: respx.MockRouter, route: str = "mint") -> dict[str, Any]:
    """The JSON body of the last request that reached OpenAI (`route`: mint or translation)."""
    body: dict[str, Any] = json.loads(upstream.routes[route].calls.last.request.content)
    return body


@pytest.fixture(name="sdk")
async def fixture_sdk(
    make_settings: MakeSettings, upstream: respx.MockRouter
) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official openai SDK with this service as its base_url (the default policy)."""
    transport = httpx.MockTransport(upstream.async_handler)
    app = create_app(make_settings(), transport=transport, sideband=ScriptedSideband())
    async with running(app) as manager:
        http_client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=manager.app))
        client = openai.AsyncOpenAI(
            base_url="http://proxy.test/v1", api_key="caller", http_client=http_client
        )
        yield client
        await client.close()
