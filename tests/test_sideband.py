"""The sideband's address and handshake, as `WebSocketSideband` derives them."""

from __future__ import annotations

import pytest

from service.contract.calls import CallKind
from service.upstream.sideband import sideband_url


class TestSidebandUrl:
    """Derived from OPENAI_BASE_URL: the scheme becomes a WebSocket one, the path OpenAI's."""

    @pytest.mark.parametrize(
        ("base", "kind", "expected"),
        [
            (
                "https://api.openai.com/v1",
                "realtime",
                "wss://api.openai.com/v1/realtime?call_id=rtc_1",
            ),
            (
                "https://api.openai.com/v1/",
                "live",
                "wss://api.openai.com/v1/live/sessions/rtc_1/attach",
            ),
            (
                "https://acme.openai.azure.com/openai/v1",
                "realtime",
                "wss://acme.openai.azure.com/openai/v1/realtime?call_id=rtc_1",
            ),
            (
                "http://127.0.0.1:8080/v1",
                "live",
                "ws://127.0.0.1:8080/v1/live/sessions/rtc_1/attach",
            ),
        ],
    )
    def test_url(self, base: str, kind: CallKind, expected: str) -> None:
        assert sideband_url(base, kind, "rtc_1") == expected
