"""The demo page in a real headless Chromium, served from another origin than the service.

The page comes from a static server on one port and calls the real service
(`python -m service`, emulator upstream, API-key auth) on another, so CORS is
real. Debian's Chromium is used; no browser is ever downloaded. Without
/usr/bin/chromium the tests skip with the reason, or fail under REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, Route, expect

from service.auth import new_api_key
from tests import demo_page
from tests.demo_page import chromium, fresh_page, screenshot
from tests.paths import POLICY, SESSIONS
from tests.servers import ServiceProcess

EMULATOR_NOTICE = "WebRTC needs a real OpenAI key: this server uses the emulator"


API_ORIGINS: list[str] = []
"""What the page's own server lists as DEMO_API_ORIGINS (the services the tests start)."""


@pytest.fixture(name="page_origin", scope="module")
def fixture_page_origin() -> Iterator[str]:
    """A static server for service/static/demo on its own port: the page's origin."""
    with demo_page.demo_origin(API_ORIGINS) as origin:
        yield origin


@pytest.fixture(name="api_key", scope="module")
def fixture_api_key() -> tuple[str, str]:
    """A caller key and its AUTH_API_KEYS entry."""
    return new_api_key("demo")


def _start_service(api_key: tuple[str, str], cors_origin: str) -> ServiceProcess:
    service = ServiceProcess(
        {
            "AUTH_MODE": "api_key",
            "AUTH_API_KEYS": api_key[1],
            "UPSTREAM_EMULATOR": "true",
            "DEMO_PAGE": "true",
            "CORS_ALLOW_ORIGINS": cors_origin,
            "POLICY_ALLOWED_MODELS": "gpt-realtime-2,gpt-realtime-2.1-mini",
            "POLICY_DEFAULT_MODEL": "gpt-realtime-2.1-mini",
            "POLICY_ALLOWED_VOICES": "alloy,marin",
            "POLICY_DEFAULT_VOICE": "marin",
            "WORKERS": "1",
        }
    )
    try:
        service.wait_ready()
    except BaseException:
        service.stop()
        raise
    API_ORIGINS.append(service.url)
    return service


@pytest.fixture(name="service", scope="module")
def fixture_service(api_key: tuple[str, str], page_origin: str) -> Iterator[ServiceProcess]:
    """The service allowing the page's origin."""
    service = _start_service(api_key, page_origin)
    yield service
    service.stop()


@pytest.fixture(name="foreign_service", scope="module")
def fixture_foreign_service(api_key: tuple[str, str], page_origin: str) -> Iterator[ServiceProcess]:
    """The service allowing only http://localhost:<page port>, not the page's 127.0.0.1."""
    service = _start_service(api_key, page_origin.replace("127.0.0.1", "localhost"))
    yield service
    service.stop()


@pytest.fixture(name="browser", scope="module")
def fixture_browser() -> Iterator[Browser]:
    """Debian's headless Chromium driven by Playwright."""
    with chromium(["--disable-gpu"]) as browser:
        yield browser


@pytest.fixture(name="page")
def fixture_page(browser: Browser) -> Iterator[Page]:
    """A fresh page in its own context (no shared cache or storage)."""
    with fresh_page(browser) as page:
        yield page


def demo_url(page_origin: str, service: ServiceProcess) -> str:
    return demo_page.demo_url(page_origin, service.url)


def service_error(service: ServiceProcess, headers: dict[str, str], body: dict[str, Any]) -> str:
    """The service's own wording of the error for this request (a dry run: nothing minted)."""
    response = httpx.post(f"{service.url}{SESSIONS}?dry_run=true", json=body, headers=headers)
    assert response.status_code >= 400
    message: str = response.json()["error"]["message"]
    return message


def load_policy(page: Page, key: str) -> None:
    """Type the key and load the policy; returns once the selects are filled."""
    page.fill("#api-key", key)
    page.click("#load-policy")
    expect(page.locator("#voice")).to_have_value("marin")


def policy_without_calls(route: Route) -> None:
    """The service's /v1/policy as a service that creates no calls answers it (no `calls`)."""
    response = route.fetch()
    body = response.json()
    body.pop("calls", None)
    route.fulfill(response=response, json=body)


def is_mint(request: Request) -> bool:
    return request.method == "POST" and request.url.endswith(SESSIONS)


@pytest.mark.browser
class TestDemoPage:
    """The demo page minting cross-origin against the real service."""

    def test_mint_shows_session_and_masks_secret(
        self,
        page: Page,
        page_origin: str,
        service: ServiceProcess,
        api_key: tuple[str, str],
        tmp_path: Path,
    ) -> None:
        """An allowed origin with the key mints; the secret is masked and counted down."""
        page.goto(demo_url(page_origin, service))
        load_policy(page, api_key[0])
        page.select_option("#voice", "alloy")
        with page.expect_response(lambda r: is_mint(r.request)) as minted:
            page.click("#mint")
        assert minted.value.status == 200
        secret: str = minted.value.json()["client_secret"]["value"]
        result = page.locator("#result")
        expect(result).to_be_visible()
        expect(result).to_contain_text('"voice": "alloy"')
        expect(result).to_contain_text(f'"value": "{secret[:6]}…"')
        expect(page.locator("#expires-in")).to_have_text(re.compile(r"^[1-9][0-9]*$"))
        expect(page.locator("#error")).to_be_hidden()
        expect(page.locator("#connect")).to_be_enabled()
        assert secret.startswith("ek_")
        assert secret not in page.content()
        screenshot(page, tmp_path / "mint-ok.png")

    def test_selects_offer_only_allowed_values(
        self,
        page: Page,
        page_origin: str,
        service: ServiceProcess,
        api_key: tuple[str, str],
        tmp_path: Path,
    ) -> None:
        """The model and voice selects list exactly /v1/policy's values, defaults selected."""
        page.goto(demo_url(page_origin, service))
        load_policy(page, api_key[0])
        policy = httpx.get(
            f"{service.url}{POLICY}", headers={"Authorization": f"Bearer {api_key[0]}"}
        ).json()
        for select in ("model", "voice"):
            options = page.locator(f"#{select} option")
            expect(options).to_have_text(policy[f"{select}s"]["allowed"])
            values = options.evaluate_all("options => options.map(option => option.value)")
            assert values == policy[f"{select}s"]["allowed"]
            expect(page.locator(f"#{select}")).to_have_value(policy[f"{select}s"]["default"])
        assert policy["voices"]["allowed"] == ["alloy", "marin"]
        assert policy["models"]["default"] == "gpt-realtime-2.1-mini"
        screenshot(page, tmp_path / "policy.png")

    def test_denied_origin_fails_visibly_once(
        self,
        page: Page,
        page_origin: str,
        foreign_service: ServiceProcess,
        api_key: tuple[str, str],
        tmp_path: Path,
    ) -> None:
        """An origin not in CORS_ALLOW_ORIGINS shows the failure and is not retried."""
        to_api: list[Request] = []
        page.on("request", lambda r: to_api.append(r))
        page.clock.install()  # timers are ours: a delayed retry would fire in run_for below
        page.goto(demo_url(page_origin, foreign_service))
        unreachable = (
            f"Request failed: could not reach {foreign_service.url} (network error or CORS)"
        )
        expect(page.locator("#error")).to_have_text(unreachable)  # the policy load failed
        page.fill("#api-key", api_key[0])
        with page.expect_event("requestfailed", predicate=is_mint):
            page.click("#mint")
        error = page.locator("#error")
        expect(error).to_be_visible()
        expect(error).to_have_text(unreachable)
        expect(page.locator("#result")).to_be_hidden()
        expect(page.locator("#connect")).to_be_disabled()
        page.clock.run_for("05:00")
        expect(page.locator("#mint")).to_be_enabled()
        methods = [r.method for r in to_api if r.url.startswith(foreign_service.url)]
        assert methods.count("POST") == 1, methods
        assert methods.count("GET") == 1, methods  # the policy load, not retried either
        screenshot(page, tmp_path / "cors-denied.png")

    def test_disallowed_voice_shows_policy_error(
        self,
        page: Page,
        page_origin: str,
        service: ServiceProcess,
        api_key: tuple[str, str],
        tmp_path: Path,
    ) -> None:
        """A voice outside the policy shows the 403's message as the service words it."""
        page.goto(demo_url(page_origin, service))
        load_policy(page, api_key[0])
        page.locator("#voice").evaluate("select => select.add(new Option('robot', 'robot'))")
        page.select_option("#voice", "robot")
        with page.expect_response(lambda r: is_mint(r.request)) as refused:
            page.click("#mint")
        assert refused.value.status == 403
        expected = service_error(
            service,
            {"Authorization": f"Bearer {api_key[0]}"},
            {"model": "gpt-realtime-2.1-mini", "voice": "robot"},
        )
        assert expected.startswith("Policy violation: voice: voice 'robot' is not allowed")
        expect(page.locator("#error")).to_have_text(expected)
        expect(page.locator("#result")).to_be_hidden()
        expect(page.locator("#connect")).to_be_disabled()
        screenshot(page, tmp_path / "policy-violation.png")

    def test_missing_key_shows_401_message(
        self, page: Page, page_origin: str, service: ServiceProcess, tmp_path: Path
    ) -> None:
        """Without the API key the policy load and the mint show the service's 401 message."""
        expected = service_error(service, {}, {})
        page.goto(demo_url(page_origin, service))
        expect(page.locator("#error")).to_have_text(expected)
        expect(page.locator("#status")).to_contain_text("Enter an API key")
        with page.expect_response(lambda r: is_mint(r.request)) as refused:
            page.click("#mint")
        assert refused.value.status == 401
        expect(page.locator("#error")).to_have_text(expected)
        expect(page.locator("#error")).to_be_visible()
        expect(page.locator("#connect")).to_be_disabled()
        screenshot(page, tmp_path / "unauthorized.png")

    def test_key_goes_to_no_unlisted_origin(
        self, page: Page, page_origin: str, api_key: tuple[str, str], tmp_path: Path
    ) -> None:
        """`?api=` naming an origin outside DEMO_API_ORIGINS gets no typed key, and says why."""
        stranger = ServiceProcess({"AUTH_MODE": "none", "UPSTREAM_EMULATOR": "true"})
        try:
            stranger.wait_ready()
            carried: list[str] = []
            page.on(
                "request",
                lambda request: (
                    carried.append(request.url) if "authorization" in request.headers else None
                ),
            )
            page.goto(demo_url(page_origin, stranger))
            page.fill("#api-key", api_key[0])
            page.click("#load-policy")
            expect(page.locator("#error")).to_contain_text(
                f"Not sending your API key to {stranger.url}"
            )
            assert carried == []
            screenshot(page, tmp_path / "unlisted-origin.png")
        finally:
            stranger.stop()

    def test_connect_against_emulator_needs_real_key(
        self,
        page: Page,
        page_origin: str,
        service: ServiceProcess,
        api_key: tuple[str, str],
        tmp_path: Path,
    ) -> None:
        """From a service that creates no calls, Connect uses the minted secret: an emulator
        secret gets an explanation, and nothing goes to api.openai.com."""
        requests: list[Request] = []
        page.on("request", lambda r: requests.append(r))
        page.route(re.compile(r"^https://api\.openai\.com/"), lambda route: route.abort())
        page.route(f"{service.url}{POLICY}", policy_without_calls)
        page.goto(demo_url(page_origin, service))
        expect(page.locator("#connect")).to_be_disabled()
        load_policy(page, api_key[0])
        page.click("#mint")
        expect(page.locator("#connect")).to_be_enabled()
        page.click("#connect")
        expect(page.locator("#error")).to_contain_text(EMULATOR_NOTICE)
        expect(page.locator("#connect")).to_be_disabled()
        expect(page.locator("#hangup")).to_be_disabled()
        assert [r.url for r in requests if "api.openai.com" in r.url] == []
        screenshot(page, tmp_path / "emulator-connect.png")
