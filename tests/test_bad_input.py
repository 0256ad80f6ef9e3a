"""Bad input on the endpoints: a 4xx in OpenAI's envelope, and nothing sent upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import httpx
import pytest
import respx

from service.api import create_app
from tests.conftest import MakeSettings, running
from tests.paths import CLIENT_SECRETS, SESSIONS

pytestmark = pytest.mark.anyio
MINT_ENDPOINTS = [SESSIONS, CLIENT_SECRETS]
JSON = {"Content-Type": "application/json"}


def assert_envelope(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    error: dict[str, object] = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    return error


@pytest.mark.parametrize("endpoint", MINT_ENDPOINTS)
class TestMalformedBodies:
    """Bodies that are not a JSON object of the right shape."""

    @pytest.mark.parametrize(
        "content",
        [b"{", b"", b"   ", b"null", b"[]", b'"session"', b"42", b"\xff\xfe{}", b'{"a":1}{'],
    )
    async def test_not_a_json_object(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter, endpoint: str, content: bytes
    ) -> None:
        """Malformed JSON, non-objects and invalid UTF-8 are 400s; OpenAI is not called."""
        error = assert_envelope(await client.post(endpoint, content=content, headers=JSON), 400)
        assert error["type"] == "invalid_request_error"
        assert not upstream.routes["mint"].called

    async def test_deeply_nested_body(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter, endpoint: str
    ) -> None:
        """Pathological nesting is refused without a crash."""
        content = b'{"tools":' + b"[" * 5000 + b"]" * 5000 + b"}"
        assert_envelope(await client.post(endpoint, content=content, headers=JSON), 400)
        assert not upstream.routes["mint"].called

    async def test_huge_body_is_413(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter, endpoint: str
    ) -> None:
        """A body over 64 KiB is refused before it is parsed."""
        content = b'{"instructions": "' + b"x" * 70_000 + b'"}'
        error = assert_envelope(await client.post(endpoint, content=content, headers=JSON), 413)
        assert error["code"] == "request_too_large"
        assert not upstream.routes["mint"].called

    async def test_huge_streamed_body_without_length_is_413(
        self, client: httpx.AsyncClient, endpoint: str
    ) -> None:
        """A chunked body is counted as it arrives and cut off at the limit."""

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(100):
                yield b"x" * 1024

        assert_envelope(await client.post(endpoint, content=chunks(), headers=JSON), 413)


class TestFieldErrors:
    """Field-level errors name the field as a dotted path."""

    @pytest.mark.parametrize(
        ("body", "param", "code"),
        [
            ({"voice": 5}, "voice", "invalid_type"),
            ({"speed": "fast"}, "speed", "invalid_type"),
            ({"speed": 2.0}, "speed", "invalid_value"),
            ({"speed": 0.1}, "speed", "invalid_value"),
            ({"temperature": 1.5}, "temperature", "invalid_value"),
            ({"max_response_output_tokens": 0}, "max_response_output_tokens", "invalid_value"),
            ({"max_response_output_tokens": 4097}, "max_response_output_tokens", "invalid_value"),
            ({"max_response_output_tokens": "lots"}, "max_response_output_tokens", "invalid_type"),
            ({"max_response_output_tokens": True}, "max_response_output_tokens", "invalid_type"),
            ({"turn_detection": {"threshold": 1.5}}, "turn_detection.threshold", "invalid_value"),
            ({"turn_detection": {"type": "push_to_talk"}}, "turn_detection.type", "invalid_value"),
            (
                {"turn_detection": {"prefix_padding_ms": -1}},
                "turn_detection.prefix_padding_ms",
                "invalid_value",
            ),
            ({"input_audio_format": "mp3"}, "input_audio_format", "invalid_value"),
            ({"modalities": ["video"]}, "modalities[0]", "invalid_value"),
            ({"modalities": []}, "modalities", "invalid_value"),
            (
                {"tools": [{"type": "function", "name": "f", "parameters": "none"}]},
                "tools[0].parameters",
                "invalid_type",
            ),
            ({"tracing": "on"}, "tracing", "invalid_value"),
            ({"speed": 1, "model": 7}, "model", "invalid_type"),
            (
                {"client_secret": {"expires_after": {"seconds": 5}}},
                "client_secret.expires_after.seconds",
                "invalid_value",
            ),
            (
                {"client_secret": {"expires_after": {"anchor": "now"}}},
                "client_secret.expires_after.anchor",
                "invalid_value",
            ),
        ],
    )
    async def test_bad_value_names_its_field(
        self,
        client: httpx.AsyncClient,
        upstream: respx.MockRouter,
        body: dict[str, object],
        param: str,
        code: str,
    ) -> None:
        """Wrong types and out-of-range values are 400s naming the field."""
        error = assert_envelope(await client.post(MINT_ENDPOINTS[0], json=body), 400)
        assert error["param"] == param
        assert error["code"] == code
        assert not upstream.routes["mint"].called

    @pytest.mark.parametrize(
        ("endpoint", "body", "param"),
        [
            (MINT_ENDPOINTS[0], {"voices": "alloy"}, "voices"),
            (
                MINT_ENDPOINTS[0],
                {"turn_detection": {"type": "server_vad", "sensitivity": 3}},
                "turn_detection.sensitivity",
            ),
            (MINT_ENDPOINTS[0], {"tools": [{"name": "f", "strict": True}]}, "tools[0].strict"),
            (
                MINT_ENDPOINTS[1],
                {"session": {"type": "realtime", "audio": {"output": {"pitch": 2}}}},
                "session.audio.output.pitch",
            ),
            (MINT_ENDPOINTS[1], {"sesion": {}}, "sesion"),
        ],
    )
    async def test_unknown_field_is_named(
        self,
        client: httpx.AsyncClient,
        upstream: respx.MockRouter,
        endpoint: str,
        body: dict[str, object],
        param: str,
    ) -> None:
        """Unknown and nested unknown fields are 400s naming the path."""
        error = assert_envelope(await client.post(endpoint, json=body), 400)
        assert error["param"] == param
        assert error["code"] == "unknown_parameter"
        assert not upstream.routes["mint"].called

    async def test_integral_number_is_an_integer(self, client: httpx.AsyncClient) -> None:
        """`300.0` is the integer 300, as JSON Schema reads it; `300.5` is not."""
        whole = await client.post(
            f"{MINT_ENDPOINTS[1]}?dry_run=true", json={"expires_after": {"seconds": 300.0}}
        )
        assert whole.status_code == 200, whole.text
        assert whole.json()["expires_after"]["seconds"] == 300
        half = await client.post(MINT_ENDPOINTS[1], json={"expires_after": {"seconds": 300.5}})
        assert assert_envelope(half, 400)["param"] == "expires_after.seconds"

    @pytest.mark.parametrize(
        ("endpoint", "body", "param"),
        [
            (SESSIONS, {"turn_detection": {"silence_duration_ms": 2**64}}, "silence_duration_ms"),
            (SESSIONS, {"tools": [{"name": "f", "parameters": {"maximum": 2**70}}]}, "parameters"),
            (SESSIONS, {"tracing": {"metadata": {"n": -(2**64)}}}, "tracing"),
            (
                CLIENT_SECRETS,
                {"session": {"type": "realtime", "tracing": {"metadata": {"n": 2**64}}}},
                "session.tracing",
            ),
        ],
    )
    async def test_integer_beyond_64_bits_is_400(
        self,
        client: httpx.AsyncClient,
        upstream: respx.MockRouter,
        endpoint: str,
        body: dict[str, Any],
        param: str,
    ) -> None:
        """An integer no upstream can read is a 400 at parse time, in dry runs too."""
        for path in (endpoint, f"{endpoint}?dry_run=true"):
            error = assert_envelope(await client.post(path, json=body), 400)
            assert param in str(error["param"])
        assert upstream.routes["mint"].call_count == 0

    @pytest.mark.parametrize("reduction", [{}, {"type": None}])
    async def test_noise_reduction_without_a_type_is_400(
        self, client: httpx.AsyncClient, reduction: dict[str, Any]
    ) -> None:
        """Noise reduction with no type is refused: name one, or send null to turn it off."""
        response = await client.post(SESSIONS, json={"input_audio_noise_reduction": reduction})
        error = assert_envelope(response, 400)
        assert error["param"] == "input_audio_noise_reduction.type"

    async def test_nan_is_refused(self, client: httpx.AsyncClient) -> None:
        """NaN is not a number the API accepts."""
        response = await client.post(MINT_ENDPOINTS[0], content=b'{"speed": NaN}', headers=JSON)
        assert_envelope(response, 400)


class TestMediaType:
    """The body must be declared JSON."""

    @pytest.mark.parametrize("endpoint", MINT_ENDPOINTS)
    @pytest.mark.parametrize(
        "content_type",
        [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x"],
    )
    async def test_other_media_types_are_415(
        self,
        client: httpx.AsyncClient,
        upstream: respx.MockRouter,
        endpoint: str,
        content_type: str | None,
    ) -> None:
        """What a cross-site simple request can send is a 415, never a mint."""
        headers = {"Content-Type": content_type} if content_type else {}
        response = await client.post(endpoint, content=b"{}", headers=headers)
        assert assert_envelope(response, 415)["code"] == "unsupported_media_type"
        assert upstream.routes["mint"].call_count == 0

    async def test_json_with_charset_mints(self, client: httpx.AsyncClient) -> None:
        """`application/json; charset=utf-8` is JSON."""
        response = await client.post(
            SESSIONS, content=b"{}", headers={"Content-Type": "Application/JSON; charset=utf-8"}
        )
        assert response.status_code == 200, response.text


class TestRoutes:
    """Unknown routes and methods answer in the envelope too."""

    async def test_trailing_slash_is_404_not_a_redirect(self, client: httpx.AsyncClient) -> None:
        """`/v1/policy/` is no route: a 404, never a redirect to whatever Host says."""
        response = await client.get("/v1/policy/", headers={"Host": "evil.example"})
        assert_envelope(response, 404)
        assert "location" not in response.headers

    async def test_unknown_route_is_404_envelope(self, client: httpx.AsyncClient) -> None:
        """A typo in the path is a 404 the SDKs can parse."""
        assert_envelope(await client.post("/v1/realtime/session", json={}), 404)

    async def test_wrong_method_is_405_envelope(self, client: httpx.AsyncClient) -> None:
        """GET on a mint endpoint is a 405 in the envelope, with the Allow header RFC 9110 asks."""
        response = await client.get(MINT_ENDPOINTS[0])
        assert_envelope(response, 405)
        assert response.headers["allow"] == "POST"

    @pytest.mark.parametrize("value", ["1", "yes", "", "TRUE"])
    async def test_dry_run_is_true_or_false(self, client: httpx.AsyncClient, value: str) -> None:
        """`dry_run` is the boolean the OpenAPI document declares: anything else is a 400."""
        response = await client.post(f"{MINT_ENDPOINTS[0]}?dry_run={value}", json={})
        assert assert_envelope(response, 400)["param"] == "dry_run"


class TestClientDisconnect:
    """A client gone before its body ended has asked for nothing."""

    async def test_cut_body_is_not_minted(
        self, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """A disconnect before the last body chunk aborts the request: nothing goes upstream."""
        app = create_app(make_settings(), transport=httpx.MockTransport(upstream.async_handler))
        messages: list[dict[str, Any]] = [
            {"type": "http.request", "body": b"{}", "more_body": True},
            {"type": "http.disconnect"},
        ]
        sent: list[dict[str, Any]] = []

        async def receive() -> MutableMapping[str, Any]:
            return messages.pop(0)

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(dict(message))

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": SESSIONS,
            "raw_path": SESSIONS.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
            "client": ("127.0.0.1", 1),
            "server": ("proxy.test", 80),
        }
        async with running(app) as manager:
            await manager.app(scope, receive, send)
        assert upstream.routes["mint"].call_count == 0
        assert sent[0]["status"] == 499
