"""The emulator refuses what OpenAI's schemas refuse, naming the problem as OpenAI does."""

from __future__ import annotations

from typing import Any

import pytest

from emulator import live_schema, schema
from emulator.mint import REQUEST
from emulator.schema import LIVE_FILE

MINT = schema.published(REQUEST)


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        (
            {"session": {"type": "realtime", "temperature": 1}},
            "session.temperature",
            "unknown_parameter",
        ),
        (
            {"session": {"type": "realtime", "audio": {"output": {"voice": 5}}}},
            "session.audio.output.voice",
            "invalid_type",
        ),
        ({"session": {}}, "session.type", "missing_required_parameter"),
        (
            {
                "session": {
                    "type": "realtime",
                    "tools": [{"type": "function", "name": "x", "bogus": 1}],
                }
            },
            "session.tools[0].bogus",
            "unknown_parameter",
        ),
        (
            {"session": {"type": "realtime", "output_modalities": ["video"]}},
            "session.output_modalities[0]",
            "invalid_value",
        ),
        ([], None, "invalid_type"),
    ],
)
def test_refusal_names_the_parameter(body: Any, param: str | None, code: str) -> None:
    """Each refusal is a 400 `invalid_request_error` naming one dotted parameter and a code."""
    refused = MINT.refusal(body)
    assert refused is not None
    assert (refused.param, refused.code, refused.status_code) == (param, code, 400)
    if param is not None:
        assert param in refused.message


def test_wrong_value_in_a_tagged_union_is_reported_in_the_branch_meant() -> None:
    """A transcription session with a realtime-only field names that field, not the union."""
    refused = MINT.refusal({"session": {"type": "transcription", "voice": "marin"}})
    assert refused is not None
    assert refused.param == "session.voice"
    assert refused.code == "unknown_parameter"


def test_caller_value_is_never_echoed() -> None:
    """A wrong value's text stays out of the message (it may be long, or a secret)."""
    secret = "sk-proj-should-not-echo"
    refused = MINT.refusal({"session": {"type": "realtime", "model": {"x": secret}}})
    assert refused is not None
    assert secret not in refused.message


def test_valid_bodies_pass() -> None:
    """Minimal realtime and transcription sessions and an empty body are valid mints."""
    for body in ({}, {"session": {"type": "transcription"}}, {"session": {"type": "realtime"}}):
        assert MINT.refusal(body) is None, MINT.problems(body)


def test_live_requires_a_model_and_webrtc_transport() -> None:
    """GPT-Live's body follows the SDK's `LiveCreateParams`: `session.model` is required."""
    live = schema.live()
    missing = live.refusal({"session": {}, "transport": {"type": "webrtc", "sdp": "v=0"}})
    assert missing is not None
    assert (missing.param, missing.code) == ("session.model", "missing_required_parameter")
    good = {"session": {"model": "gpt-live"}, "transport": {"type": "webrtc", "sdp": "v=0"}}
    assert live.refusal(good) is None, live.problems(good)


def test_shipped_live_schema_is_the_sdks() -> None:
    """`schemas/live.json` is what the installed openai SDK's types generate today."""
    assert LIVE_FILE.read_text(encoding="utf-8") == live_schema.generate(), (
        "regenerate: uv run python -m emulator.live_schema"
    )
