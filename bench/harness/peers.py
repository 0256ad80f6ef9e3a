"""The peers: how each one, and the upstream emulator they all call, is started and driven."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .processes import Probe
from .settings import (
    BENCH_DIR,
    CLIENT_KEY,
    GA_PATH,
    HOST,
    MINIMAL_BODY,
    UPSTREAM_KEY,
    WRK_DIR,
    RunSettings,
)

PEER_ORDER = ("emulator", "express", "naive", "service", "service-mixed")
PEER_LABELS = {
    "emulator": "(a) emulator direct",
    "express": "(b) Express /token",
    "naive": "(c) naive FastAPI",
    "service": "(d) service",
    "service-mixed": "(d) service, mixed",
}

_INHERITED_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
_JSON = {"Content-Type": "application/json"}


def label(peer: str) -> str:
    """The peer's name in the report."""
    return PEER_LABELS.get(peer, peer)


def base_env() -> dict[str, str]:
    """A clean environment, so nothing of the developer's leaks into a peer.

    Keys, proxies, RATE_LIMIT_*, REDIS_URL, POLICY_* ...: each peer gets only
    what is set here and in `plan_peer`.
    """
    env = {key: os.environ[key] for key in _INHERITED_ENV if key in os.environ}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def service_env(settings: RunSettings) -> dict[str, str]:
    """What the service gets on top of PORT, OPENAI_BASE_URL and OPENAI_API_KEY."""
    digest = hashlib.sha256(CLIENT_KEY.encode()).hexdigest()
    return {
        "HOST": HOST,
        "AUTH_MODE": "api_key",
        "AUTH_API_KEYS": f"bench:{digest}",
        "LOG_FORMAT": "json",
        "METRICS_ENABLED": "true",
        "WORKERS": "1",
        # The mixed script sends client-defined tools; the default policy
        # (tools set by the server) would refuse them with 403.
        "POLICY_TOOLS_MODE": "client",
        **settings.service_env,
    }


def emulator_command(settings: RunSettings, port: int, latency_ms: float) -> list[str]:
    """`python -m service emulator`: the upstream every peer calls."""
    return [
        settings.python,
        *("-m", "service", "emulator"),
        *("--host", HOST, "--port", str(port), "--latency-ms", f"{latency_ms:g}"),
    ]


def emulator_probe() -> Probe:
    """A real mint against the emulator."""
    return Probe(
        "POST", GA_PATH, MINIMAL_BODY, {"Authorization": f"Bearer {UPSTREAM_KEY}", **_JSON}
    )


@dataclass(frozen=True)
class PeerPlan:
    """How to start a peer (no command: the emulator is the peer) and how wrk drives it."""

    command: list[str] | None
    env: dict[str, str]
    probe: Probe
    script: Path
    url_path: str
    wrk_env: dict[str, str]
    mixed: bool  # answers include intended policy rejections


def plan_peer(peer: str, settings: RunSettings, port: int, upstream_port: int) -> PeerPlan:
    """The plan for `peer` listening on `port`, calling the emulator on `upstream_port`."""
    env = base_env()
    env.update(
        {
            "PORT": str(port),
            "OPENAI_BASE_URL": f"http://{HOST}:{upstream_port}/v1",
            "OPENAI_API_KEY": UPSTREAM_KEY,
        }
    )
    minimal = WRK_DIR / "post_minimal.lua"
    if peer == "emulator":
        wrk_env = {"BENCH_API_KEY": UPSTREAM_KEY}
        return PeerPlan(None, {}, emulator_probe(), minimal, GA_PATH, wrk_env, mixed=False)
    if peer == "express":
        command = ["node", str(BENCH_DIR / "express" / "server.js")]
        probe = Probe("GET", "/token")
        return PeerPlan(command, env, probe, WRK_DIR / "get_token.lua", "/token", {}, mixed=False)
    if peer == "naive":
        command = [
            settings.python,
            *("-m", "uvicorn", "naive_fastapi:app", "--app-dir", str(BENCH_DIR)),
            *("--host", HOST, "--port", str(port), "--workers", "1"),
            *("--no-access-log", "--log-level", "warning"),
        ]
        probe = Probe("POST", GA_PATH, MINIMAL_BODY, _JSON)
        return PeerPlan(command, env, probe, minimal, GA_PATH, {}, mixed=False)
    if peer in ("service", "service-mixed"):
        env.update(service_env(settings))
        mixed = peer == "service-mixed"
        return PeerPlan(
            command=[settings.python, "-m", "service"],
            env=env,
            probe=Probe("GET", "/readyz"),
            script=WRK_DIR / ("service_mixed.lua" if mixed else "post_minimal.lua"),
            # The mixed script sets each request's path itself.
            url_path="" if mixed else GA_PATH,
            wrk_env={"BENCH_API_KEY": CLIENT_KEY, "BENCH_REJECT_VOICE": settings.reject_voice},
            mixed=mixed,
        )
    raise ValueError(f"unknown peer {peer!r}")
