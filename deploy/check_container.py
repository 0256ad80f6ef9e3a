"""Build the real image with Podman, run it the way production does, and check it.

    python -m deploy.check_container [--refresh-base]

1. Base: the Debian bookworm + python3.11 image from `deploy.base_image`
   (bootstrapped with mmdebstrap once, then reused from podman's store).
2. Build deploy/Dockerfile on it (`--build-arg PYTHON_IMAGE=...`), handing the
   host's CA bundle to the download steps as the `ca_bundle` build secret
   (build time only), with podman's layer cache.
3. Run it read-only (tmpfs /tmp), as uid:gid 10001 (the Dockerfile's USER),
   on the host network with free ports for PORT and METRICS_PORT,
   UPSTREAM_EMULATOR=true AUTH_MODE=none WORKERS=1; wait for /readyz.
4. Mint through the emulator (POST /v1/realtime/client_secrets must answer 200
   with an `ek_` value), see /metrics only on METRICS_PORT, run the image's
   HEALTHCHECK, then SIGTERM: the container must exit 0 within the grace period.
5. Scan every layer of the image for certificates the host trusts beyond the
   distribution's and certifi's (a TLS-inspecting proxy's CA): none may be baked in.

Exit status 0 when every step passes; the tests in tests/deploy call the same
functions step by step.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from deploy import base_image
from deploy.certificates import foreign_certificates, image_files_containing, read_certifi_bundle
from deploy.dockerfile import Dockerfile
from deploy.podman import Podman, PodmanError, run_tool

__all__ = [
    "Build",
    "CheckFailed",
    "Container",
    "build_image",
    "check",
    "main",
    "running",
]

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
IMAGE = "localhost/realtime-token-proxy:check"
BASE_IMAGE_ARG = "PYTHON_IMAGE"
CA_SECRET_ID = "ca_bundle"  # noqa: S105 - the build secret's name, not a secret
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
DISTRO_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
BUILD_TIMEOUT = 1200
READY_TIMEOUT = 30.0
# Longer than the image's SHUTDOWN_GRACE_SECONDS default (20 s), as an orchestrator's is.
STOP_TIMEOUT = 30.0
MINT_BODY = {"session": {"type": "realtime"}}


class CheckFailed(AssertionError):
    """A step of the container check did not behave as production needs."""


@dataclass(frozen=True)
class Build:
    """A built image: its reference, base, how long the build took and its size."""

    image: str
    base: str
    seconds: float
    size_bytes: int


def build_image(
    podman: Podman,
    base: str,
    *,
    image: str = IMAGE,
    context: Path = ROOT,
    ca_bundle: Path | None = HOST_CA_BUNDLE,
) -> Build:
    """`podman build` deploy/Dockerfile on `base`, the CA bundle as a build-time secret."""
    dockerfile = Dockerfile.load(context / "deploy" / "Dockerfile")
    if BASE_IMAGE_ARG not in dockerfile.args:
        raise CheckFailed(f"deploy/Dockerfile declares no ARG {BASE_IMAGE_ARG} before FROM")
    args = [
        "build",
        # Docker's image format: OCI's has no HEALTHCHECK, and podman would drop it.
        "--format=docker",
        "--pull=never",
        "--network=host",
        f"--build-arg={BASE_IMAGE_ARG}={base}",
        f"--file={context / 'deploy' / 'Dockerfile'}",
        f"--tag={image}",
    ]
    if ca_bundle is not None and ca_bundle.is_file():
        args.append(f"--secret=id={CA_SECRET_ID},src={ca_bundle}")
    previous = podman.image_id(image) if podman.image_exists(image) else None
    started = time.monotonic()
    podman.run(*args, str(context), timeout=BUILD_TIMEOUT)
    seconds = time.monotonic() - started
    if previous is not None and previous != podman.image_id(image):
        # The image this tag named before: its layers above the build cache
        # (the venv copy, ~80 MB) would pile up with every code change.
        podman.run("rmi", previous, check=False)
    return Build(image, base, seconds, podman.image_size(image))


class Container:
    """One container of the image, started detached; `remove` it when done."""

    def __init__(self, podman: Podman, name: str, port: int, metrics_port: int) -> None:
        self.podman = podman
        self.name = name
        self.url = f"http://127.0.0.1:{port}"
        self.metrics_url = f"http://127.0.0.1:{metrics_port}"

    @classmethod
    def start(
        cls, podman: Podman, image: str, *, port: int, metrics_port: int, user: str
    ) -> Container:
        """`podman run` the image read-only, as `user`, on the host network."""
        name = f"rtp-check-{os.getpid()}-{secrets.token_hex(3)}"
        env = {
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "METRICS_PORT": str(metrics_port),
            "UPSTREAM_EMULATOR": "true",
            "AUTH_MODE": "none",
            "WORKERS": "1",
        }
        podman.run(
            "run",
            "--detach",
            f"--name={name}",
            "--read-only",
            "--tmpfs=/tmp",
            f"--user={user}",
            "--network=host",
            # Keep the HEALTHCHECK for `podman healthcheck run`, without the
            # systemd timer podman would otherwise try to create.
            "--health-interval=disable",
            *(f"--env={key}={value}" for key, value in env.items()),
            image,
        )
        return cls(podman, name, port, metrics_port)

    def state(self) -> str:
        """Podman's state of the container: `running`, `exited`, ..."""
        return self.podman.run(
            "container", "inspect", "--format={{.State.Status}}", self.name
        ).stdout.strip()

    def logs(self) -> str:
        """Everything the container wrote to stdout and stderr."""
        result = self.podman.run("logs", self.name, check=False)
        return result.stdout + result.stderr

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> float:
        """Seconds until GET /readyz answered 200; CheckFailed if it exits or times out."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                if self.state() != "running":
                    raise CheckFailed(f"exited before ready:\n{self.logs()}") from None
            time.sleep(0.1)
        raise CheckFailed(f"GET /readyz not 200 within {timeout}s:\n{self.logs()}")

    def mint(self) -> httpx.Response:
        """POST /v1/realtime/client_secrets with a minimal GA session."""
        return httpx.post(f"{self.url}/v1/realtime/client_secrets", json=MINT_BODY, timeout=10)

    def healthcheck(self) -> int:
        """Exit status of the image's HEALTHCHECK run now in the container (0: healthy)."""
        return self.podman.run("healthcheck", "run", self.name, check=False).returncode

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """Send SIGTERM; the exit status, or None if still running after `timeout`."""
        self.podman.run("kill", "--signal=TERM", self.name)
        try:
            result = run_tool(
                self.podman.argv(["wait", self.name]), env=self.podman.env, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return None
        return int(result.stdout.strip())

    def remove(self) -> None:
        """Remove the container, killing it if it still runs."""
        self.podman.run("rm", "--force", "--time=0", self.name, check=False)


@contextmanager
def running(
    podman: Podman, image: str, *, port: int, metrics_port: int, user: str
) -> Iterator[Container]:
    """A started container, removed on exit whatever happened."""
    container = Container.start(podman, image, port=port, metrics_port=metrics_port, user=user)
    try:
        yield container
    finally:
        container.remove()


def read_file_in_image(podman: Podman, image: str, path: str) -> str:
    """A text file of `image` (empty if absent), read by a throwaway container."""
    result = podman.run(
        "run", "--rm", "--network=none", "--entrypoint=cat", image, path, check=False
    )
    return result.stdout if result.returncode == 0 else ""


def check(podman: Podman, *, refresh_base: bool = False) -> Build:
    """Every step in the module docstring; CheckFailed at the first that fails."""
    say(f"base image {base_image.PYTHON.tag()}: bootstrapped with mmdebstrap unless podman has it")
    started = time.monotonic()
    base = base_image.PYTHON.ensure(podman, refresh=refresh_base)
    say(f"base image ready in {time.monotonic() - started:.1f} s")
    say(f"building {IMAGE} on {base}")
    build = build_image(podman, base)
    say(f"built in {build.seconds:.1f} s, {build.size_bytes / 1e6:.0f} MB")
    user = Dockerfile.load(DOCKERFILE).final.user
    port, metrics_port = free_port(), free_port()
    with running(podman, build.image, port=port, metrics_port=metrics_port, user=user) as ctr:
        say(f"ready after {ctr.wait_ready():.2f} s")
        minted = ctr.mint()
        if minted.status_code != 200 or not minted.json().get("value", "").startswith("ek_"):
            raise CheckFailed(f"mint: {minted.status_code} {minted.text[:300]}")
        say("minted an ek_ secret through the emulator")
        if httpx.get(f"{ctr.url}/metrics", timeout=5).status_code != 404:
            raise CheckFailed("/metrics is served on the main port")
        if httpx.get(f"{ctr.metrics_url}/metrics", timeout=5).status_code != 200:
            raise CheckFailed("/metrics is not served on METRICS_PORT")
        if ctr.healthcheck() != 0:
            raise CheckFailed(f"HEALTHCHECK failed:\n{ctr.logs()}")
        say("metrics on METRICS_PORT only; HEALTHCHECK healthy")
        status = ctr.terminate()
        if status != 0:
            raise CheckFailed(f"after SIGTERM: exit status {status}:\n{ctr.logs()}")
        say("SIGTERM: exit 0")
    foreign = foreign_certificates(
        HOST_CA_BUNDLE.read_text(encoding="utf-8") if HOST_CA_BUNDLE.is_file() else "",
        read_file_in_image(podman, base, DISTRO_CA_BUNDLE),
        read_certifi_bundle(),
    )
    leaks = image_files_containing(podman, build.image, foreign) if foreign else []
    if leaks:
        raise CheckFailed(f"the host's CA certificates are baked into: {leaks}")
    say(f"no layer holds any of the host's {len(foreign)} extra CA certificate(s)")
    return build


def free_port() -> int:
    """A TCP port nobody listens on right now (the container binds it on the host)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def say(message: str) -> None:
    """One progress line on stderr."""
    sys.stderr.write(f"check-container: {message}\n")


def main(argv: list[str] | None = None) -> int:
    """Run the check; 0 on success, 1 on a failed step, 2 without podman."""
    parser = argparse.ArgumentParser(prog="python -m deploy.check_container")
    parser.add_argument(
        "--refresh-base", action="store_true", help="bootstrap the base image again"
    )
    args = parser.parse_args(argv)
    podman = Podman.find()
    if podman is None:
        say("podman is not installed (apt-get install podman runc)")
        return 2
    try:
        check(podman, refresh_base=args.refresh_base)
    except (CheckFailed, PodmanError) as failure:
        say(f"FAIL: {failure}")
        return 1
    say("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
