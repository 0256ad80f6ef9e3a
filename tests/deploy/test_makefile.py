"""Makefile and .ci/run: the two commands' set-up, as a fresh clone on stock Debian runs it.

`make -n` prints what make would run without running it, so these tests see
the set-up a machine without uv would get, in milliseconds. The real thing
(`env -i PATH=/usr/bin:/bin HOME=... make test` in a fresh clone) is what
.ci/run does. `make run` itself runs for real in a scratch folder, with a uv
stand-in that execs the suite's interpreter, so the recipe's precedence of
the shell, `.env` and its development defaults is what is tested.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.deploy.support import MAKEFILE, ROOT, run, tool
from tests.servers import free_port, log_file

CI_RUN = ROOT / ".ci" / "run"


def dry_run(tmp_path: Path, target: str, path: str) -> str:
    """`make -n TARGET` on a copy of the Makefile, with PATH as given."""
    shutil.copy(MAKEFILE, tmp_path / "Makefile")
    make = tool("make", "apt-get install make")
    result = run([make, "-n", target], cwd=tmp_path, env={"PATH": path}, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(name="fake_uv")
def fixture_fake_uv(tmp_path: Path) -> str:
    """A directory holding an executable named uv, for a PATH that has one."""
    folder = tmp_path / "bin"
    folder.mkdir()
    uv = folder / "uv"
    uv.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    uv.chmod(0o755)
    return str(folder)


class TestMakeSetup:
    def test_without_uv_bootstraps_a_private_venv(self, tmp_path: Path) -> None:
        """Without uv on PATH, setup makes .venv-bootstrap with `python3 -m venv` first."""
        commands = dry_run(tmp_path, "setup", "/usr/bin:/bin")
        assert "python3 -m venv .venv-bootstrap" in commands
        assert ".venv-bootstrap/bin/uv sync --frozen" in commands

    def test_uv_is_pinned_and_installed_into_the_private_venv(self, tmp_path: Path) -> None:
        """The bootstrap pip is the private venv's, installing one exact uv version."""
        commands = dry_run(tmp_path, "setup", "/usr/bin:/bin")
        install = next(line for line in commands.splitlines() if "pip install" in line)
        assert install.startswith(".venv-bootstrap/bin/python -m pip install")
        assert re.search(r"'uv==\d+\.\d+\.\d+'", install)

    def test_never_installs_into_the_system_python(self, tmp_path: Path) -> None:
        """No command runs the system interpreter's pip (PEP 668 forbids it on Debian)."""
        commands = dry_run(tmp_path, "setup", "/usr/bin:/bin")
        assert not re.search(r"(^|\s)python3? -m pip", commands, re.MULTILINE)

    def test_uses_a_uv_already_on_path(self, tmp_path: Path, fake_uv: str) -> None:
        """With uv on PATH there is no bootstrap: that uv syncs the lock."""
        commands = dry_run(tmp_path, "setup", f"{fake_uv}:/usr/bin:/bin")
        assert "venv-bootstrap" not in commands
        assert f"{fake_uv}/uv sync --frozen" in commands

    def test_uv_trusts_the_system_store_and_downloads_nothing_else(self) -> None:
        """make exports system certificates for uv, no Python downloads, no browser downloads."""
        text = MAKEFILE.read_text(encoding="utf-8")
        for setting in (
            "export UV_SYSTEM_CERTS := true",
            "export UV_PYTHON_DOWNLOADS := never",
            "export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1",
        ):
            assert setting in text

    def test_bootstrap_venv_is_git_ignored(self) -> None:
        """.venv-bootstrap never shows up as something to commit."""
        ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
        assert ".venv-bootstrap/" in ignored


class TestCiRun:
    def test_is_valid_bash(self) -> None:
        """.ci/run parses as bash."""
        result = run([tool("bash", "bash"), "-n", str(CI_RUN)], timeout=30)
        assert result.returncode == 0, result.stderr

    def test_runs_make_test_once_in_a_minimal_environment(self) -> None:
        """make test runs once, under env -i with the system PATH and the REQUIRE_* switches."""
        lines = CI_RUN.read_text(encoding="utf-8").splitlines()
        code = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
        command = " ".join(code.split("env -i", 1)[1].replace("\\\n", " ").split())
        assert code.count("make test") == 1
        assert command.startswith('PATH=/usr/bin:/bin HOME="$home"')
        for switch in (
            "REQUIRE_REDIS=1",
            "REQUIRE_BROWSER=1",
            "REQUIRE_DEPLOY_TOOLS=1",
            "REQUIRE_NODE=1",
        ):
            assert switch in command.split(" make test")[0]

    def test_installs_the_container_tools(self) -> None:
        """CI installs python3-venv and what the real image check needs."""
        text = CI_RUN.read_text(encoding="utf-8")
        for package in ("python3-venv", "podman", "runc", "mmdebstrap", "redis-sentinel"):
            assert re.search(rf"(^|\s){re.escape(package)}(\s|$)", text, re.MULTILINE), package


FAKE_UV = """#!/bin/sh
# uv for `make run` in a scratch folder: `sync` records its arguments, `run`
# execs what follows `python` with the suite's interpreter (the project's venv).
case "$1" in
  sync) echo "$@" >> "{log}"; exit 0 ;;
  run) while [ "$1" != python ]; do shift; done; shift; exec "{python}" "$@" ;;
esac
exit 64
"""


@dataclass
class MakeRun:
    """`make run` started in a scratch folder holding a copy of the Makefile (and a .env)."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path
    syncs: Path

    def ready(self) -> None:
        """Wait until /readyz answers, failing with the output if make run exits."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"make run exited {self.process.returncode}:\n{self.log.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        pytest.fail(f"make run not ready:\n{self.log.read_text()}")

    def sources(self) -> dict[str, str]:
        """The start-up log's config_sources line (JSON lines only: console is ours to parse)."""
        for line in self.log.read_text().splitlines():
            if '"config_sources"' in line:
                event: dict[str, str] = json.loads(line)
                return event
        pytest.fail(f"no config_sources line:\n{self.log.read_text()}")


@pytest.fixture(name="make_run")
def fixture_make_run(tmp_path: Path) -> Iterator[Callable[..., MakeRun]]:
    """Start `make run` with `.env` text and shell variables; stopped at the end."""
    started: list[MakeRun] = []

    def start(dotenv: str | None = None, **shell: str) -> MakeRun:
        folder = tmp_path / f"run{len(started)}"
        (folder / "bin").mkdir(parents=True)
        shutil.copy(MAKEFILE, folder / "Makefile")
        syncs = folder / "syncs.log"
        uv = folder / "bin" / "uv"
        uv.write_text(FAKE_UV.format(log=syncs, python=sys.executable), encoding="utf-8")
        uv.chmod(0o755)
        port = free_port()
        if dotenv is not None:
            (folder / ".env").write_text(dotenv, encoding="utf-8")
        env = {
            "PATH": f"{folder / 'bin'}:/usr/bin:/bin",
            "HOME": str(folder),
            "PORT": str(port),
            "SECRETS_DIR": "/none",
            **shell,
        }
        log = folder / "make-run.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [tool("make", "apt-get install make"), "run"],
                cwd=folder,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        run_ = MakeRun(process, f"http://127.0.0.1:{port}", log, syncs)
        started.append(run_)
        return run_

    yield start
    for run_ in started:
        if run_.process.poll() is None:
            os.killpg(run_.process.pid, signal.SIGTERM)
            run_.process.wait(timeout=30)
        log_file("make-run").write_text(run_.log.read_text(), encoding="utf-8")


MINT = {"session": {"type": "realtime"}}


class TestMakeRun:
    """`make run` for real: the shell, then .env, then make run's development defaults."""

    def test_development_defaults_without_a_dotenv(self, make_run: Callable[..., MakeRun]) -> None:
        """No .env, no key: the emulator, no caller auth, and the log says make run chose both."""
        started = make_run(LOG_FORMAT="json")
        started.ready()
        minted = httpx.post(f"{started.url}/v1/realtime/client_secrets", json=MINT, timeout=10)
        assert minted.status_code == 200, minted.text
        sources = started.sources()
        assert sources["AUTH_MODE"] == "make run"
        assert sources["UPSTREAM_EMULATOR"] == "make run"
        assert sources["LOG_FORMAT"] == "environment"

    def test_dotenv_beats_the_development_defaults(self, make_run: Callable[..., MakeRun]) -> None:
        """AUTH_MODE=api_key in .env holds under make run: an unauthenticated mint is refused."""
        entry = "web:" + hashlib.sha256(b"rtp-make-run-key").hexdigest()
        started = make_run(f"AUTH_MODE=api_key\nAUTH_API_KEYS={entry}\nLOG_FORMAT=json\n")
        started.ready()
        refused = httpx.post(f"{started.url}/v1/realtime/client_secrets", json=MINT, timeout=10)
        assert refused.status_code == 401, refused.text
        sources = started.sources()
        assert (sources["AUTH_MODE"], sources["LOG_FORMAT"]) == (".env", ".env")
        assert sources["DEMO_PAGE"] == "make run"

    def test_the_shell_beats_dotenv(self, make_run: Callable[..., MakeRun]) -> None:
        """A variable in the shell wins over the same one in .env."""
        started = make_run("AUTH_MODE=api_key\nLOG_FORMAT=json\n", AUTH_MODE="none")
        started.ready()
        minted = httpx.post(f"{started.url}/v1/realtime/client_secrets", json=MINT, timeout=10)
        assert minted.status_code == 200, minted.text
        assert started.sources()["AUTH_MODE"] == "environment"

    def test_installs_the_runtime_only(self, make_run: Callable[..., MakeRun]) -> None:
        """make run syncs without the dev group, with the emulator's WebRTC extra."""
        started = make_run(LOG_FORMAT="json")
        started.ready()
        sync = started.syncs.read_text().split()
        assert {"--no-dev", "--extra", "webrtc", "--frozen"} <= set(sync)
