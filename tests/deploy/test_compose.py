"""docker-compose.yml: the local stack, read the way a Compose implementation reads it.

Docker Compose cannot run here, so the file is resolved by podman-compose (a
Compose implementation on PyPI, dev dependency) with `config`: interpolation,
`.env`, YAML merge keys and profiles applied. Every test reads that resolved
model; the secret-copier command is also executed locally.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.dockerfile import Dockerfile
from tests.deploy.support import APP_UID, COMPOSE, IMAGE_CMD, METRICS_PORT, probe, run

EMULATOR_CMD = [
    *IMAGE_CMD,
    "emulator",
    "--host",
    "0.0.0.0",  # noqa: S104 - the container's listen address under test, not a bind of ours
    "--port",
    "8080",
]
SHELL_KEY = "sk-SHELL-SENTINEL-0123456789abcdefghij"
DOTENV_KEY = "sk-DOTENV-SENTINEL-0123456789abcdefghij"

Doc = dict[str, Any]


def compose_config(
    tmp_path: Path, *, profiles: tuple[str, ...] = ("emulator",), shell_key: bool = True
) -> tuple[str, Doc]:
    """`podman-compose config` on a copy of the file, with a .env as a developer writes it.

    The .env holds a key (and `METRICS_PORT=` left empty, as .env.example had it);
    with `shell_key` the shell exports another. Returns the printed text and
    its YAML. The copy keeps any real .env of the worktree out of reach.
    """
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(COMPOSE, project / "docker-compose.yml")
    (project / ".env").write_text(
        f"OPENAI_API_KEY={DOTENV_KEY}\nMETRICS_PORT=\nUPSTREAM_EMULATOR=true\n", encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "METRICS_PORT")}
    if shell_key:
        env["OPENAI_API_KEY"] = SHELL_KEY
    profile_args = [arg for profile in profiles for arg in ("--profile", profile)]
    argv = [sys.executable, "-m", "podman_compose", "--dry-run", "--file"]
    argv += [str(project / "docker-compose.yml"), *profile_args, "config"]
    result = run(argv, cwd=project, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    document = yaml.safe_load(result.stdout)
    assert isinstance(document, dict)
    return result.stdout, document


@pytest.fixture(name="compose", scope="module")
def fixture_compose(tmp_path_factory: pytest.TempPathFactory) -> Doc:
    """The resolved compose model, every profile on (resolved once: podman-compose takes ~0.5 s)."""
    return compose_config(tmp_path_factory.mktemp("compose"))[1]


@pytest.fixture(name="services", scope="module")
def fixture_services(compose: Doc) -> Doc:
    """The resolved services."""
    services: Doc = compose["services"]
    return services


def copier_code(tmp_path: Path, services: Doc) -> tuple[str, Path, Path]:
    """proxy-secrets' Python, pointed at a secret file and an output folder under tmp_path."""
    secret, out = tmp_path / "secret", tmp_path / "out"
    out.mkdir()
    command = services["proxy-secrets"]["command"]
    assert command[:2] == ["python", "-c"]
    code = command[2].replace("/run/secrets/openai_api_key", str(secret))
    return code.replace("/out/", f"{out}/"), secret, out


class TestComposeServices:
    def test_defines_proxy_redis_and_emulator(self, services: Doc) -> None:
        """Services proxy, redis and emulator exist (plus the one-shot proxy-secrets)."""
        assert set(services) == {"proxy", "redis", "emulator", "proxy-secrets"}

    def test_emulator_needs_its_profile(self, tmp_path: Path) -> None:
        """Without `--profile emulator` the emulator service is not part of the stack."""
        _, plain = compose_config(tmp_path, profiles=())
        assert set(plain["services"]) == {"proxy", "redis", "proxy-secrets"}

    def test_proxy_builds_the_deploy_dockerfile(self, services: Doc) -> None:
        """The proxy image is built from the project root with deploy/Dockerfile."""
        build = services["proxy"]["build"]
        assert Path(build["context"]).name == "project"
        assert build["dockerfile"] == "deploy/Dockerfile"

    def test_proxy_publishes_8000_and_reads_env_file(self, services: Doc) -> None:
        """The proxy publishes 8000:8000 only and reads .env (optional, so a shell export works)."""
        proxy = services["proxy"]
        assert proxy["ports"] == ["8000:8000"]
        assert proxy["env_file"] == [{"path": ".env", "required": False}]

    def test_proxy_waits_for_healthy_redis_and_shares_it(self, services: Doc) -> None:
        """The proxy starts after Redis is healthy and points REDIS_URL at it."""
        proxy = services["proxy"]
        assert proxy["depends_on"]["redis"] == {"condition": "service_healthy"}
        assert proxy["environment"]["REDIS_URL"] == "redis://redis:6379/0"

    def test_proxy_listens_where_the_port_is_published(self, services: Doc) -> None:
        """HOST and PORT are pinned (a .env written for make run cannot move them); auth is on.

        `environment:` wins over `env_file:`, so `.env.example`'s HOST=127.0.0.1
        cannot leave the published port reaching nothing while the in-container
        health check still passes. AUTH_MODE defaults to api_key, so a stack
        without a .env fails on missing AUTH_API_KEYS, never serves anyone.
        """
        environment = services["proxy"]["environment"]
        assert (environment["HOST"], str(environment["PORT"])) == ("0.0.0.0", "8000")  # noqa: S104
        assert environment["AUTH_MODE"] == "api_key"

    def test_redis_keeps_an_append_only_file_on_a_volume(self, services: Doc, compose: Doc) -> None:
        """Redis holds call records, slots, leases and usage: they survive its restart."""
        redis = services["redis"]
        command = redis["command"]
        options = dict(zip(command[1::2], command[2::2], strict=True))
        assert command[0] == "redis-server"
        assert options["--appendonly"] == "yes"
        (volume,) = redis["volumes"]
        assert volume["type"] == "volume"
        assert volume["target"] == options["--dir"] == "/data"
        assert volume["source"] in compose["volumes"]

    def test_proxy_root_is_read_only_with_tmpfs_tmp(self, services: Doc) -> None:
        """The proxy's root filesystem is read-only; only /tmp (a tmpfs) is writable."""
        proxy = services["proxy"]
        assert proxy["read_only"] is True
        assert [entry.split(":")[0] for entry in proxy["tmpfs"]] == ["/tmp"]
        assert proxy["cap_drop"] == ["ALL"]

    def test_healthchecks(self, services: Doc, dockerfile: Dockerfile) -> None:
        """The proxy checks /healthz like the image does; Redis answers `redis-cli ping`."""
        assert services["proxy"]["healthcheck"]["test"] == [
            "CMD",
            *dockerfile.final.healthcheck.argv,
        ]
        assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
        assert services["redis"]["image"] == "redis:7-alpine"

    def test_proxy_healthcheck_works(
        self, services: Doc, health_server: tuple[int, list[int]]
    ) -> None:
        """The proxy's compose health check exits 0 on a 200 from /healthz, non-zero on 503."""
        port, status = health_server
        argv = services["proxy"]["healthcheck"]["test"][1:]
        assert probe(argv, port) == 0
        status[0] = 503
        assert probe(argv, port) != 0

    def test_emulator_is_opt_in_and_runs_the_image(
        self, services: Doc, dockerfile: Dockerfile
    ) -> None:
        """The emulator is in profile `emulator`, same image, running the emulator subcommand."""
        emulator = services["emulator"]
        assert emulator["profiles"] == ["emulator"]
        assert emulator["image"] == services["proxy"]["image"]
        assert emulator["build"] == services["proxy"]["build"]
        assert emulator["command"] == EMULATOR_CMD
        assert emulator["command"][: len(IMAGE_CMD)] == dockerfile.final.cmd
        assert "8080/healthz" in emulator["healthcheck"]["test"][-1]


class TestComposeMetrics:
    def test_metrics_port_defaults_to_9100(self, services: Doc) -> None:
        """The proxy's METRICS_PORT is 9100, even with `METRICS_PORT=` left empty in .env."""
        assert str(services["proxy"]["environment"]["METRICS_PORT"]) == str(METRICS_PORT)

    def test_metrics_port_is_not_published(self, services: Doc) -> None:
        """Only the API port reaches the host: metrics stay on the compose network."""
        published = [entry.split(":")[-1] for entry in services["proxy"]["ports"]]
        assert str(METRICS_PORT) not in published


class TestComposeKey:
    def test_config_never_prints_the_key(self, tmp_path: Path) -> None:
        """`config` shows neither the shell's nor .env's OPENAI_API_KEY value anywhere."""
        text, _ = compose_config(tmp_path)
        assert SHELL_KEY not in text
        assert DOTENV_KEY not in text

    def test_loads_without_the_key(self, tmp_path: Path) -> None:
        """The file needs no key to be read: nothing interpolates OPENAI_API_KEY."""
        (tmp_path / "dotenv-free").mkdir()
        _, document = compose_config(tmp_path / "dotenv-free", shell_key=False)
        assert "proxy" in document["services"]
        raw = COMPOSE.read_text(encoding="utf-8")
        assert "${OPENAI_API_KEY" not in raw
        assert "$OPENAI_API_KEY" not in raw

    def test_key_is_a_secret_named_by_its_variable(self, compose: Doc) -> None:
        """Secret openai_api_key's source is the variable's NAME, read only at container start."""
        assert compose["secrets"] == {"openai_api_key": {"environment": "OPENAI_API_KEY"}}
        assert compose["services"]["proxy-secrets"]["secrets"] == ["openai_api_key"]

    def test_proxy_reads_the_key_from_run_secrets(self, services: Doc) -> None:
        """The proxy mounts the copied key read-only at /run/secrets, after the copier succeeded."""
        proxy = services["proxy"]
        assert proxy["depends_on"]["proxy-secrets"] == {
            "condition": "service_completed_successfully"
        }
        assert {
            "type": "volume",
            "source": "proxy-secrets",
            "target": "/run/secrets",
            "read_only": True,
        } in proxy["volumes"]

    def test_env_file_key_is_blanked(self, services: Doc) -> None:
        """A key in .env (env_file) is overridden by an empty OPENAI_API_KEY in `environment`."""
        assert services["proxy"]["environment"]["OPENAI_API_KEY"] == ""

    def test_copier_leaves_the_key_to_the_app_uid_only(
        self, services: Doc, dockerfile: Dockerfile, tmp_path: Path
    ) -> None:
        """proxy-secrets' command writes the key, mode 0400, owned by the image's uid."""
        if os.geteuid() != 0:
            pytest.skip("chown to the app uid needs root (CI runs as root)")
        code, secret, out = copier_code(tmp_path, services)
        secret.write_bytes(b"sk-test-key\n")
        assert dockerfile.final.user == f"{APP_UID}:{APP_UID}"
        assert f"{APP_UID}, {APP_UID}" in code
        for _ in range(2):  # a second run replaces the key it left
            result = run([sys.executable, "-c", code], timeout=30)
            assert result.returncode == 0, result.stderr
        written = out / "openai_api_key"
        assert written.read_bytes() == b"sk-test-key\n"
        stat = written.stat()
        assert (stat.st_uid, stat.st_gid, stat.st_mode & 0o777) == (APP_UID, APP_UID, 0o400)
        assert sorted(p.name for p in out.iterdir()) == ["openai_api_key"]

    @pytest.mark.parametrize("content", [None, b"", b"\n"])
    def test_copier_refuses_a_missing_or_empty_key(
        self, services: Doc, tmp_path: Path, content: bytes | None
    ) -> None:
        """Without a key (OPENAI_API_KEY= in .env) the copier fails, says why, writes nothing."""
        code, secret, out = copier_code(tmp_path, services)
        if content is not None:
            secret.write_bytes(content)
        result = run([sys.executable, "-c", code], timeout=30)
        assert result.returncode == 1
        assert "OPENAI_API_KEY is empty" in result.stderr
        assert list(out.iterdir()) == []
