"""docker-compose.yml brought up for real: the documented steps give a working stack.

The steps are the compose file's own comment: `cp .env.example .env`, set
OPENAI_API_KEY and AUTH_API_KEYS (an entry from `python -m service hash-key`),
`up`. Here the stack runs under podman-compose on the image this suite builds
(tagged as the file's `realtime-token-proxy:local`, so nothing is pulled) and
Debian's redis-server as PROXY_REDIS_IMAGE (no registry is reachable). The .env
keeps `.env.example`'s `HOST=127.0.0.1`, which must not take the published
port away.

One deviation, named: podman-compose cannot hand a container a secret whose
source is an environment variable ("not supported for runtime secrets"), which
Docker Compose can; an override file gives the same secret from a file, so
the proxy-secrets copier and the read-only proxy run exactly as written.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from deploy import base_image
from deploy.check_container import Build
from deploy.podman import Podman
from tests.deploy.support import COMPOSE, ROOT, run
from tests.servers import free_port, log_file

pytestmark = pytest.mark.timeout(1200)

COMPOSE_IMAGE = "localhost/realtime-token-proxy:local"
UPSTREAM_KEY = "sk-compose-upstream-0123456789abcdef"  # the emulator accepts any key
QUOTA = 3
READY_TIMEOUT = 60.0
OVERRIDE = """\
secrets:
  openai_api_key: !override
    file: ./openai_api_key
"""
MINT = {"session": {"type": "realtime"}}
CALLERS = ("web", "mobile")


@dataclass
class Stack:
    """One compose project: its folder, name, published URL and the caller's key."""

    podman: Podman
    folder: Path
    project: str
    url: str
    keys: dict[str, str]

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`podman-compose` on the copied file and the override, in this project."""
        argv = [sys.executable, "-m", "podman_compose", "--project-name", self.project]
        argv += ["--file", "docker-compose.yml", "--file", "override.yml", *args]
        return run(argv, cwd=self.folder, env=self.podman.env, timeout=timeout)

    def container(self, service: str) -> str:
        """The container name podman-compose gives the service's one replica."""
        return f"{self.project}_{service}_1"

    def mint(self, caller: str) -> httpx.Response:
        """A GA mint through the published port, as `caller` (a name in AUTH_API_KEYS)."""
        headers = {"Authorization": f"Bearer {self.keys[caller]}"}
        return httpx.post(
            f"{self.url}/v1/realtime/client_secrets", json=MINT, headers=headers, timeout=10
        )

    def wait_ready(self) -> dict[str, object]:
        """/readyz through the published port, once it says ready (Redis reached)."""
        deadline = time.monotonic() + READY_TIMEOUT
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"{self.url}/readyz", timeout=2)
                if answer.status_code == 200:
                    body: dict[str, object] = answer.json()
                    return body
                last = answer.text
            except httpx.TransportError as exc:
                last = repr(exc)
            time.sleep(0.25)
        logs = self.podman.run("logs", self.container("proxy"), check=False)
        pytest.fail(f"stack not ready in {READY_TIMEOUT}s ({last}):\n{logs.stdout}{logs.stderr}")


def documented_env(entry: str, redis_image: str, publish_port: int) -> str:
    """.env.example as the compose comment says to edit it, for the emulator."""
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    text, keys = re.subn(r"(?m)^OPENAI_API_KEY=.*$", f"OPENAI_API_KEY={UPSTREAM_KEY}", text)
    text, entries = re.subn(r"(?m)^AUTH_API_KEYS=.*$", f"AUTH_API_KEYS={entry}", text)
    assert keys == entries == 1, ".env.example must have active OPENAI_API_KEY= and AUTH_API_KEYS="
    assert re.search(r"(?m)^#? ?HOST=127\.0\.0\.1$", text), ".env.example documents HOST"
    # Uncommented, as a developer who also uses `make run` would have it.
    text = re.sub(r"(?m)^# ?HOST=127\.0\.0\.1$", "HOST=127.0.0.1", text)
    return (
        f"{text}\nUPSTREAM_EMULATOR=true\nQUOTA_MINTS_PER_DAY={QUOTA}\n"
        f"PROXY_REDIS_IMAGE={redis_image}\nPROXY_PUBLISH_PORT={publish_port}\n"
    )


def hash_key(name: str) -> tuple[str, str]:
    """A caller key and its AUTH_API_KEYS entry, from the documented command."""
    result = run([sys.executable, "-m", "service", "hash-key", name], timeout=30)
    assert result.returncode == 0, result.stderr
    fields = dict(line.split(":", 1) for line in result.stdout.splitlines() if ":" in line)
    return fields["key"].strip(), fields["entry"].strip()


@pytest.fixture(name="stack", scope="module")
def fixture_stack(
    podman: Podman, build: Build, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The compose stack, up with the documented .env; `down -v` afterwards, whatever happened."""
    if shutil.which("mmdebstrap") is None and not podman.image_exists(base_image.REDIS.tag()):
        pytest.fail("mmdebstrap is needed to bootstrap the Redis image (.ci/run installs it)")
    redis_image = base_image.REDIS.ensure(podman)
    podman.run("tag", build.image, COMPOSE_IMAGE)
    folder = tmp_path_factory.mktemp("compose")
    shutil.copy(COMPOSE, folder / "docker-compose.yml")
    (folder / "override.yml").write_text(OVERRIDE, encoding="utf-8")
    secret = folder / "openai_api_key"
    secret.write_text(UPSTREAM_KEY, encoding="utf-8")
    secret.chmod(0o600)
    made = {name: hash_key(name) for name in CALLERS}
    entries = ",".join(entry for _, entry in made.values())
    port = free_port()
    (folder / ".env").write_text(documented_env(entries, redis_image, port), encoding="utf-8")
    keys = {name: key for name, (key, _) in made.items()}
    stack = Stack(podman, folder, f"rtpci{secrets.token_hex(3)}", f"http://127.0.0.1:{port}", keys)
    try:
        up = stack.compose("up", "--detach")
        assert up.returncode == 0, up.stderr
        yield stack
    finally:
        for service in ("proxy", "redis", "proxy-secrets"):
            logs = podman.run("logs", stack.container(service), check=False)
            log_file(f"compose-{service}").write_text(logs.stdout + logs.stderr, encoding="utf-8")
        stack.compose("down", "--volumes", "--timeout", "30")


class TestComposeStack:
    def test_up_serves_callers_with_keys_only(self, stack: Stack) -> None:
        """The published port answers despite HOST=127.0.0.1 in .env; callers need keys."""
        ready = stack.wait_ready()
        assert ready["redis"] == "ok"
        anonymous = httpx.post(f"{stack.url}/v1/realtime/client_secrets", json=MINT, timeout=10)
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["code"] == "invalid_api_key"
        minted = stack.mint("web")
        assert minted.status_code == 200, minted.text
        assert minted.json()["value"].startswith("ek_")

    def test_counts_survive_a_redis_restart(self, stack: Stack) -> None:
        """Redis keeps its append-only file on the volume: a restart resets no quota.

        Two of the caller's QUOTA_MINTS_PER_DAY=3 before the restart, one after;
        the fourth is refused. Without persistence the fourth would be the
        restarted Redis's second and pass.
        """
        stack.wait_ready()
        assert [stack.mint("mobile").status_code for _ in range(QUOTA - 1)] == [200] * (QUOTA - 1)
        stack.podman.run("restart", "--time", "10", stack.container("redis"), timeout=120)
        assert stack.wait_ready()["redis"] == "ok"
        last = stack.mint("mobile")
        assert last.status_code == 200, last.text
        refused = stack.mint("mobile")
        assert refused.status_code == 429, f"the quota restarted from zero: {refused.text}"
        assert refused.json()["error"]["type"] == "rate_limit_error"

    def test_down_removes_the_stack(self, stack: Stack) -> None:
        """`down --volumes` exits 0 and leaves no container, network or volume of the project."""
        down = stack.compose("down", "--volumes", "--timeout", "30")
        assert down.returncode == 0, down.stderr
        label = f"label=io.podman.compose.project={stack.project}"
        containers = stack.podman.run("ps", "--all", "--quiet", "--filter", label).stdout
        volumes = stack.podman.run("volume", "ls", "--quiet", "--filter", label).stdout
        networks = json.loads(stack.podman.run("network", "ls", "--format", "json").stdout)
        assert containers.strip() == ""
        assert volumes.strip() == ""
        assert not [n for n in networks if n.get("name", "").startswith(stack.project)]
