"""What the deploy tests share: paths, running local tools, and the skip-or-fail rule.

A test that needs a tool that is missing skips, naming it, unless
REQUIRE_DEPLOY_TOOLS=1 (CI), when it fails instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"
K8S = ROOT / "deploy" / "k8s"
MAKEFILE = ROOT / "Makefile"

IMAGE_CMD = ["python", "-m", "service"]
APP_UID = 10001
API_PORT = 8000
METRICS_PORT = 9100


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a local tool (argv[0] an absolute path), capturing text output."""
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)


def missing(reason: str) -> NoReturn:
    """Skip for a missing tool, or fail when CI demands every deploy tool."""
    if os.environ.get("REQUIRE_DEPLOY_TOOLS") == "1":
        pytest.fail(f"{reason}; REQUIRE_DEPLOY_TOOLS=1 demands it")
    pytest.skip(reason)


def tool(name: str, hint: str) -> str:
    """The absolute path of `name`, or skip (fail under REQUIRE_DEPLOY_TOOLS=1)."""
    path = shutil.which(name)
    if path is None:
        missing(f"`{name}` is not on PATH ({hint})")
    return path


def probe(argv: list[str], port: int) -> int:
    """Run a container health check's python command here, against `port`."""
    assert argv[0] == "python"
    env = {**os.environ, "PORT": str(port)}
    return run([sys.executable, *argv[1:]], env=env, timeout=30).returncode
