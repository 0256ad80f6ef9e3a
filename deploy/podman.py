"""The Podman command line, as the deploy checks use it.

Every call goes through `Podman.run`, which adds the global options this
project needs and nothing else:

- `--runtime` (default `runc`, or `PODMAN_RUNTIME`): crun fails on some hosts
  (ours included) where runc works;
- `CONTAINERS_CONF=deploy/podman/containers.conf` unless the caller set one:
  it turns off podman's default rlimits, which a host with a low hard
  `nofile` limit refuses ("error setting rlimits ... operation not permitted").

Containers use the host's network (`--network host`): no CNI/netavark set-up,
and a container listening on 127.0.0.1 is reachable from the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

__all__ = ["CONTAINERS_CONF", "Podman", "PodmanError"]

CONTAINERS_CONF = Path(__file__).resolve().parent / "podman" / "containers.conf"
SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


class PodmanError(RuntimeError):
    """A podman command failed; the message carries its argv and output."""


def run_tool(
    argv: list[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float,
    stdin: int | IO[bytes] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a local tool (argv[0] an absolute path), text output, no shell."""
    return subprocess.run(  # noqa: S603 - a list argv of this package's fixed words and paths
        argv,
        env=dict(env) if env is not None else None,
        stdin=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


@dataclass(frozen=True)
class Podman:
    """`podman` with this project's global options; `binary` is an absolute path."""

    binary: str
    runtime: str = field(default_factory=lambda: os.environ.get("PODMAN_RUNTIME", "runc"))

    @classmethod
    def find(cls) -> Podman | None:
        """Podman from PATH, or None when it is not installed."""
        binary = shutil.which("podman")
        return cls(binary) if binary else None

    @property
    def env(self) -> dict[str, str]:
        """The environment podman runs with: ours, plus CONTAINERS_CONF unless already set.

        The sbin directories join PATH: podman's network plugins (CNI's bridge,
        for a compose project's network) look up `iptables` on PATH, and CI
        runs with PATH=/usr/bin:/bin.
        """
        env = dict(os.environ)
        env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
        path = env.get("PATH", "").split(os.pathsep)
        env["PATH"] = os.pathsep.join([*path, *(d for d in SBIN_DIRS if d not in path)])
        return env

    def argv(self, args: Iterable[str]) -> list[str]:
        """The full command line for `podman ARGS`."""
        return [self.binary, "--runtime", self.runtime, *args]

    def run(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run `podman ARGS`; raise PodmanError on a non-zero exit when `check`."""
        result = run_tool(self.argv(args), env=self.env, timeout=timeout)
        if check and result.returncode != 0:
            raise PodmanError(
                f"podman {' '.join(args)} exited {result.returncode}:\n{result.stderr.strip()}"
            )
        return result

    def image_exists(self, reference: str) -> bool:
        """Whether the local store holds `reference`."""
        return self.run("image", "exists", reference, check=False).returncode == 0

    def image_size(self, reference: str) -> int:
        """The image's size in bytes, as `podman images` reports it."""
        return int(self.run("image", "inspect", "--format", "{{.Size}}", reference).stdout)

    def image_id(self, reference: str) -> str:
        """The image's id."""
        return self.run("image", "inspect", "--format", "{{.Id}}", reference).stdout.strip()
