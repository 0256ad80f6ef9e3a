"""Micro-benchmark: JSON Schema validators for the emulator's mint check (µs per body).

Why the emulator validates with jsonschema-rs: it is `make bench`'s limit
peer, so whatever its mint costs caps every peer's figures. This validates
a minimal and a full `RealtimeCreateClientSecretRequest` body against
OpenAI's published schema, closed as the emulator closes it
(`emulator.schema.closed`), with each candidate, body parsing included, and
prints microseconds per validation (best of 5 runs). It first checks that
each candidate takes the good bodies and refuses the bad ones: a validator
that disagrees is reported, not timed. Last, the emulator's whole mint
answer (`emulator.mint.answer`: parse, validate, defaults, encode).

The candidates other than jsonschema-rs are not dependencies; bring them in
for the run:
`uv run --with jsonschema --with fastjsonschema python bench/micro_schema.py`.
A candidate that is not installed is skipped.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import timeit
from collections.abc import Callable
from typing import Any

import orjson

from emulator.mint import REQUEST, answer
from emulator.schema import PUBLISHED_FILE, closed, published

MINIMAL = {
    "session": {
        "type": "realtime",
        "model": "gpt-realtime-2",
        "audio": {"output": {"voice": "marin"}},
    }
}
FULL: dict[str, Any] = {
    "expires_after": {"anchor": "created_at", "seconds": 600},
    "session": {
        "type": "realtime",
        "model": "gpt-realtime-2",
        "output_modalities": ["audio"],
        "instructions": "You are a helpful assistant.",
        "max_output_tokens": "inf",
        "tool_choice": "auto",
        "tracing": None,
        "truncation": "auto",
        "include": ["item.input_audio_transcription.logprobs"],
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "noise_reduction": {"type": "near_field", "strength": 0.4},
                "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 200,
                    "create_response": True,
                    "interrupt_response": True,
                    "idle_timeout_ms": None,
                },
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"},
        },
        "tools": [
            {
                "type": "function",
                "name": "lookup",
                "description": "Look something up.",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
            },
            {"type": "mcp", "server_label": "docs", "server_url": "https://mcp.example/sse"},
        ],
    },
}
GOOD: list[object] = [
    MINIMAL,
    FULL,
    {"session": {"type": "transcription"}},
    {"session": {"type": "realtime", "tracing": None}},
]
BAD: list[object] = [
    {"session": {"type": "realtime", "temperature": 1}},
    {"session": {"type": "realtime", "audio": {"output": {"voice": 5}}}},
    {"expires_after": {"seconds": 5}},
    {"session": {"type": "realtime", "output_modalities": ["video"]}},
    {"session": {"type": "realtime", "tools": [{"type": "function", "name": "x", "bogus": 1}]}},
    {"session": {"type": "realtime", "max_output_tokens": "big"}},
]
Check = Callable[[bytes], bool]


def schema_document() -> dict[str, Any]:
    """The mint request's schema, closed, as one document with its components."""
    components = closed(orjson.loads(PUBLISHED_FILE.read_bytes()))["components"]
    return {"$ref": f"#/components/schemas/{REQUEST}", "components": components}


def candidates() -> dict[str, Check]:
    """Each installed validator as `body bytes -> valid?`, compiled once."""
    document = schema_document()
    found: dict[str, Check] = {
        "jsonschema-rs (the emulator's)": lambda body: (
            published(REQUEST).refusal(orjson.loads(body)) is None
        ),
    }
    if importlib.util.find_spec("fastjsonschema"):
        # Imported by name: neither candidate is a dependency, nor typed.
        fastjsonschema: Any = importlib.import_module("fastjsonschema")

        # use_default=False: by default it writes `default`s into the body while
        # trying a oneOf branch, and then refuses a bare transcription session.
        compiled = fastjsonschema.compile(document, use_default=False)

        def fast(body: bytes) -> bool:
            try:
                compiled(orjson.loads(body))
            except fastjsonschema.JsonSchemaValueException:
                return False
            return True

        found["fastjsonschema"] = fast
    if importlib.util.find_spec("jsonschema"):
        jsonschema: Any = importlib.import_module("jsonschema")
        validator = jsonschema.Draft202012Validator(document)
        found["jsonschema (Draft202012Validator)"] = lambda body: validator.is_valid(
            orjson.loads(body)
        )
    return found


def micros(run: Callable[[], object], number: int) -> float:
    """Microseconds per call, best of 5 runs."""
    run()
    return min(timeit.repeat(run, number=number, repeat=5)) / number * 1e6


def main() -> None:
    """Check, then time, each candidate; then the emulator's whole mint answer."""
    bodies = {"minimal": orjson.dumps(MINIMAL), "full": orjson.dumps(FULL)}
    for name, check in candidates().items():
        wrong = [b for b in GOOD if not check(orjson.dumps(b))]
        wrong += [b for b in BAD if check(orjson.dumps(b))]
        if wrong:
            print(f"{name:34s} disagrees with the schema on {len(wrong)} bodies: not timed")
            continue
        figures = [
            f"{label} {micros(functools.partial(check, b), 2000):8.1f} us"
            for label, b in bodies.items()
        ]
        print(f"{name:34s} " + "   ".join(figures))
    for label, body in bodies.items():
        status, _ = answer(body, has_key=True)
        if status != 200:
            raise SystemExit(f"the emulator refused the {label} body: {status}")
        took = micros(functools.partial(answer, body, True), 2000)
        print(f"emulator mint answer, {label:8s} {took:8.1f} us")


if __name__ == "__main__":
    main()
