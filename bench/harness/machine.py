"""The machine and tool versions a report was measured on."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import subprocess
from pathlib import Path

from .settings import BENCH_DIR


def command_version(cmd: list[str]) -> str:
    """First line a `--version`-style command prints, or `unavailable`."""
    try:
        out = subprocess.run(  # noqa: S603 - a list argv, no shell: the harness's fixed commands
            cmd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "unavailable"


def _proc_field(path: str, prefix: str) -> str | None:
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    return None


def _memory() -> str:
    total = _proc_field("/proc/meminfo", "MemTotal:")
    with contextlib.suppress(ValueError, IndexError, AttributeError):
        return f"{int(str(total).split()[0]) / 1024 / 1024:.1f} GiB"
    return "unknown"


def _express_version() -> str:
    with contextlib.suppress(OSError, ValueError, KeyError):
        pkg = json.loads((BENCH_DIR / "express/node_modules/express/package.json").read_text())
        return str(pkg["version"])
    return "not installed"


def describe_machine(python: str) -> list[str]:
    """Markdown list items: host, kernel, runtimes and their libraries, wrk, ulimit."""
    py_versions = command_version(
        [
            python,
            "-c",
            "import sys, fastapi, uvicorn, httpx; "
            "print(sys.version.split()[0], 'fastapi', fastapi.__version__, "
            "'uvicorn', uvicorn.__version__, 'httpx', httpx.__version__)",
        ]
    )
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    cpu = _proc_field("/proc/cpuinfo", "model name") or "unknown"
    wrk = command_version(["wrk", "--version"]).split(" Copyright")[0]
    return [
        f"- host: {platform.node()}; nproc {os.cpu_count()}; CPU {cpu}; RAM {_memory()}",
        f"- kernel: {platform.system()} {platform.release()} ({platform.machine()})",
        f"- python: {py_versions}",
        f"- node: {command_version(['node', '--version'])}; express {_express_version()}",
        f"- wrk: {wrk}",
        f"- ulimit -n: {soft} (hard {hard})",
    ]
