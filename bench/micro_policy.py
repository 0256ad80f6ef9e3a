"""Micro-benchmark: policy evaluation plus translation per mint (goal: <= 50 us).

Runs the pure part of a mint (strict parse of the body; for the beta body the
carriability check and translation to the GA session; the policy; JSON
encoding) in a loop for a few
representative bodies and prints microseconds per mint. No network, no
server: `uv run python bench/micro_policy.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson

from service.config import Settings
from service.contract import read_beta_session, read_client_secret
from service.sessions import plan
from service.sessions.client_secrets import BETA, GA_REALTIME

GA_MINIMAL = orjson.dumps(
    {
        "session": {
            "type": "realtime",
            "model": "gpt-realtime-2",
            "audio": {"output": {"voice": "marin"}},
        }
    }
)
BETA_FULL = orjson.dumps(
    {
        "model": "gpt-realtime-2",
        "voice": "marin",
        "modalities": ["text", "audio"],
        "instructions": "Be brief.",
        "input_audio_format": "g711_ulaw",
        "turn_detection": {"type": "semantic_vad", "eagerness": "high"},
        "input_audio_transcription": {"model": "gpt-transcribe", "language": "en"},
        "tools": [{"type": "function", "name": "weather", "parameters": {"type": "object"}}],
        "tool_choice": "auto",
        "max_response_output_tokens": 512,
        "speed": 1.1,
    }
)


def main() -> None:
    settings = Settings(
        _env_file=None,
        auth_mode="none",
        openai_api_key="sk-bench",
        workers=1,
        policy={"tools_mode": "client", "tracing": "auto", "max_output_tokens": 1024},
    )
    policy, model_map = settings.policy, settings.upstream_model_map

    def ga_minimal() -> None:
        request = read_client_secret(GA_MINIMAL)
        planned = plan(policy, request.session, GA_REALTIME, caller="bench", model_map=model_map)
        orjson.dumps(planned.body)

    def beta_full() -> None:
        request = read_beta_session(BETA_FULL)
        planned = plan(
            policy,
            request.session,
            BETA,
            caller="bench",
            model_map=model_map,
            ttl_seconds=request.ttl_seconds,
        )
        orjson.dumps(planned.body)

    cases: list[tuple[str, Callable[[], None]]] = [
        ("GA endpoint, minimal body", ga_minimal),
        ("beta endpoint, every rule", beta_full),
    ]
    print("policy + translation per mint (parse, check, translate, decide, encode)")
    for name, case in cases:
        for _ in range(2_000):
            case()
        rounds = 20_000
        started = time.perf_counter()
        for _ in range(rounds):
            case()
        micros = (time.perf_counter() - started) / rounds * 1e6
        verdict = "met" if micros <= 50 else "MISSED"
        print(f"  {name:<24} {micros:6.1f} us   (goal <= 50 us: {verdict})")


if __name__ == "__main__":
    main()
