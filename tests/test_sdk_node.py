"""The official openai Node SDK (7.60) as a client of the service: only baseURL changes."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from service.auth import new_api_key
from tests.conftest import SDP_OFFER
from tests.node_packages import NODE_DIR, node_with_packages
from tests.servers import ServiceProcess, free_port


@pytest.fixture(name="node", scope="module")
def fixture_node() -> str:
    """Node.js with the SDK installed from tests/node/package-lock.json (npm ci if stale)."""
    return node_with_packages()


@pytest.fixture(name="service", scope="module")
def fixture_service() -> Iterator[tuple[ServiceProcess, str]]:
    """The service against the emulator, allowing marin and alloy, with a caller key."""
    key, entry = new_api_key("node-sdk")
    service = ServiceProcess(
        {
            "AUTH_MODE": "api_key",
            "AUTH_API_KEYS": entry,
            "UPSTREAM_EMULATOR": "true",
            "POLICY_ALLOWED_VOICES": "marin,alloy",
            "POLICY_DEFAULT_VOICE": "marin",
            "WORKERS": "1",
        }
    )
    try:
        service.wait_ready()
        yield service, key
    finally:
        service.stop()


class TestNodeSdk:
    """`client.realtime.clientSecrets.create` from Node, and its typed error."""

    def test_node_sdk_mints_and_reads_refusals(
        self, node: str, service: tuple[ServiceProcess, str]
    ) -> None:
        """The Node SDK mints through the GA endpoint and gets a policy refusal as an APIError."""
        process, key = service
        result = subprocess.run(
            [node, str(NODE_DIR / "sdk_client.mjs"), f"{process.url}/v1", key],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        out = json.loads(result.stdout.strip().splitlines()[-1])
        assert out["realtime"] == {"prefix": "ek_", "voice": "marin"}
        assert out["refused"] == {
            "status": 403,
            "code": "policy_violation",
            "param": "session.audio.output.voice",
        }


@pytest.fixture(name="calls_service", scope="module")
def fixture_calls_service() -> Iterator[tuple[ServiceProcess, str]]:
    """The service creating calls on the emulator as its own process (fake media)."""
    key, entry = new_api_key("node-calls")
    port = free_port()
    emulator = ServiceProcess(
        {"PORT": str(port)}, ("emulator", "--port", str(port), "--fake-media")
    )
    service = ServiceProcess(
        {
            "AUTH_MODE": "api_key",
            "AUTH_API_KEYS": entry,
            "OPENAI_BASE_URL": f"{emulator.url}/v1",
            "OPENAI_API_KEY": "sk-test-NODE-CALLS-0123456789",
            "WORKERS": "1",
        }
    )
    try:
        emulator.wait_ready(path="/healthz")
        service.wait_ready()
        yield service, key
    finally:
        service.stop()
        emulator.stop()


class TestNodeSdkCalls:
    """A call created by multipart `fetch`, hung up with the Node SDK's own method."""

    def test_node_creates_and_hangs_up_through_the_service(
        self, node: str, calls_service: tuple[ServiceProcess, str]
    ) -> None:
        """201 and a call id; `client.realtime.calls.hangup` succeeds, then is a 404."""
        process, key = calls_service
        result = subprocess.run(
            [node, str(NODE_DIR / "sdk_calls.mjs"), f"{process.url}/v1", key, SDP_OFFER],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        out = json.loads(result.stdout.strip().splitlines()[-1])
        assert out == {
            "created": {"status": 201, "prefix": "rtc_"},
            "hungUp": True,
            "again": {"status": 404, "code": "call_not_found"},
        }
