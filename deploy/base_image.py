"""The images CI bootstraps from Debian packages: the app's base, and a Redis for compose.

No container registry is reachable from CI, so neither `python:3.11-slim-bookworm`
(deploy/Dockerfile's base) nor `redis:7-alpine` (docker-compose.yml's Redis)
can be pulled. Instead mmdebstrap bootstraps a minimal bookworm root
filesystem from Debian's packages and `podman import` turns its tarball into
an image:

- `PYTHON`: python3.11, python3-venv for pip and ca-certificates; the
  `PYTHON_IMAGE` build argument the Dockerfile accepts.
- `REDIS`: Debian's redis-server (and redis-cli, for compose's health check);
  the compose test runs the stack with it as `PROXY_REDIS_IMAGE`.

Each image is tagged with a hash of everything that shapes it (suite, mirrors,
packages, mmdebstrap options), and `ensure` skips the bootstrap (~50 s) when
podman's store already holds that tag: a machine that keeps its store between
runs bootstraps once. Change the recipe and the tag changes with it; pass
`refresh=True` to rebuild the same recipe with today's security updates.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from deploy.podman import Podman, PodmanError, run_tool

__all__ = ["MMDEBSTRAP_OPTIONS", "PYTHON", "REDIS", "SUITE", "Recipe"]

SUITE = "bookworm"
MIRRORS = (
    f"deb http://deb.debian.org/debian {SUITE} main",
    f"deb http://deb.debian.org/debian {SUITE}-updates main",
    f"deb http://deb.debian.org/debian-security {SUITE}-security main",
)
MMDEBSTRAP_OPTIONS = (
    "--variant=minbase",
    # Merged /usr set up by mmdebstrap itself; otherwise apt picks `usrmerge`,
    # which drags in perl (~45 MB).
    "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
    # No manuals, translations or docs (copyright files stay).
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--dpkgopt=path-include=/usr/share/locale/locale.alias",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
)
# mmdebstrap runs dpkg's maintainer scripts, which need the sbin directories.
SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BOOTSTRAP_TIMEOUT = 900


@dataclass(frozen=True)
class Recipe:
    """One image: the repository it is tagged in and the Debian packages it holds."""

    repository: str
    packages: tuple[str, ...]

    def mmdebstrap_argv(self, binary: str) -> list[str]:
        """The mmdebstrap command that writes the root filesystem as a tarball to stdout."""
        return [
            binary,
            *MMDEBSTRAP_OPTIONS,
            f"--include={','.join(self.packages)}",
            SUITE,
            "-",
            *MIRRORS,
        ]

    def tag(self) -> str:
        """The image reference for this recipe: a hash of all that shapes it."""
        recipe = {"options": MMDEBSTRAP_OPTIONS, "packages": self.packages, "mirrors": MIRRORS}
        digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
        return f"{self.repository}:{SUITE}-{digest[:12]}"

    def ensure(self, podman: Podman, *, refresh: bool = False) -> str:
        """The image's reference, bootstrapping it first unless the store has it."""
        reference = self.tag()
        if podman.image_exists(reference) and not refresh:
            return reference
        mmdebstrap = shutil.which("mmdebstrap")
        if mmdebstrap is None:
            raise PodmanError("mmdebstrap is not installed (apt-get install mmdebstrap)")
        env = {**os.environ, "PATH": SBIN_PATH}
        # mmdebstrap's progress goes to a file: a pipe nobody reads while the
        # tarball streams could fill up and stall it.
        with (
            tempfile.TemporaryFile() as log,
            subprocess.Popen(  # noqa: S603 - mmdebstrap's absolute path, constant options, no shell
                self.mmdebstrap_argv(mmdebstrap), stdout=subprocess.PIPE, stderr=log, env=env
            ) as bootstrap,
        ):
            imported = run_tool(
                podman.argv(["import", "--message", " ".join(self.packages), "-", reference]),
                env=podman.env,
                timeout=BOOTSTRAP_TIMEOUT,
                stdin=bootstrap.stdout,
            )
            bootstrap.wait(timeout=BOOTSTRAP_TIMEOUT)
            log.seek(0)
            progress = log.read().decode(errors="replace")
        if bootstrap.returncode != 0:
            raise PodmanError(f"mmdebstrap exited {bootstrap.returncode}:\n{progress[-3000:]}")
        if imported.returncode != 0:
            raise PodmanError(f"podman import exited {imported.returncode}:\n{imported.stderr}")
        return reference


PYTHON = Recipe("localhost/rtp-debian-python", ("python3.11", "python3-venv", "ca-certificates"))
REDIS = Recipe("localhost/rtp-debian-redis", ("redis-server",))
