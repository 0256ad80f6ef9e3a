"""Makefile and .ci/run: the two commands' set-up, as a fresh clone on stock Debian runs it.

`make -n` prints what make would run without running it, so these tests see
the set-up a machine without uv would get, in milliseconds. The real thing
(`env -i PATH=/usr/bin:/bin HOME=... make test` in a fresh clone) is what
.ci/run does.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.deploy.support import MAKEFILE, ROOT, run, tool

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
