"""The real image: built with Podman on a Debian base, run read-only, stopped with SIGTERM.

Each test is one step of deploy/check_container.py (the same functions), and
one test runs the script whole. Needs podman (with runc) and, unless podman's
store already has the base image, mmdebstrap: without them the tests skip,
or fail under REQUIRE_DEPLOY_TOOLS=1. The first build bootstraps the base
(~50 s) and builds (~25 s); later runs reuse both from podman's store.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deploy import base_image, certificates, check_container
from deploy.check_container import Build, Container
from deploy.dockerfile import Dockerfile
from deploy.podman import Podman
from tests.deploy.support import APP_UID
from tests.servers import free_port, log_file

pytestmark = pytest.mark.timeout(1200)

SIZE_BUDGET_BYTES = 300_000_000
HINT = "apt-get install podman runc mmdebstrap; .ci/run installs them"


def started(podman: Podman, build: Build, dockerfile: Dockerfile) -> Container:
    """A container of the image as production runs it, ready to serve."""
    container = Container.start(
        podman,
        build.image,
        port=free_port(),
        metrics_port=free_port(),
        user=dockerfile.final.user,
    )
    try:
        container.wait_ready()
    except BaseException:
        container.remove()
        raise
    return container


def finish(container: Container) -> None:
    """Keep the container's output for the suite's secret scan, then remove it."""
    log_file(f"container-{container.name}").write_text(container.logs(), encoding="utf-8")
    container.remove()


@pytest.fixture(name="container", scope="module")
def fixture_container(podman: Podman, build: Build, dockerfile: Dockerfile) -> Iterator[Container]:
    """One running container shared by the tests that only look at it."""
    container = started(podman, build, dockerfile)
    yield container
    finish(container)


class TestBaseImage:
    def test_tag_follows_the_recipe(self) -> None:
        """Another package list gives another tag, so a stale cached base is never reused."""
        recipe = base_image.PYTHON
        other = dataclasses.replace(recipe, packages=(*recipe.packages, "curl"))
        assert other.tag() != recipe.tag()
        assert other.tag().split(":")[0] == recipe.tag().split(":")[0]

    def test_base_python_is_the_distributions(self, podman: Podman, base: str) -> None:
        """The base's python3.11 is Debian's own (/usr/bin), with venv and pip available."""
        code = "import ensurepip, sys, venv; print(sys.executable, sys.version_info[:2])"
        result = podman.run("run", "--rm", "--network=none", base, "python3.11", "-c", code)
        assert result.stdout.split(maxsplit=1) == ["/usr/bin/python3.11", "(3, 11)\n"]


class TestImage:
    def test_builds_on_the_debian_base(self, build: Build, base: str) -> None:
        """The image builds from deploy/Dockerfile with PYTHON_IMAGE set to the Debian base."""
        assert build.base == base
        assert build.size_bytes > 0

    def test_stays_within_its_size_budget(self, build: Build) -> None:
        """The image (base, venv, nothing else) stays under 300 MB."""
        assert build.size_bytes < SIZE_BUDGET_BYTES, f"{build.size_bytes / 1e6:.0f} MB"

    def test_rebuild_reuses_every_layer(self, podman: Podman, build: Build, base: str) -> None:
        """Building again with nothing changed gives the same image: every layer was cached."""
        again = check_container.build_image(podman, base)
        assert podman.image_id(again.image) == podman.image_id(build.image)

    def test_holds_no_host_ca_certificate(self, podman: Podman, build: Build, base: str) -> None:
        """No layer carries a CA the host trusts beyond the distribution's and certifi's."""
        if not check_container.HOST_CA_BUNDLE.is_file():
            pytest.skip(f"no {check_container.HOST_CA_BUNDLE} on this host")
        foreign = certificates.foreign_certificates(
            check_container.HOST_CA_BUNDLE.read_text(encoding="utf-8"),
            check_container.read_file_in_image(podman, base, check_container.DISTRO_CA_BUNDLE),
            certificates.read_certifi_bundle(),
        )
        assert certificates.image_files_containing(podman, build.image, foreign) == []

    def test_ca_scan_sees_a_certificate_in_a_deleted_layer(
        self, podman: Podman, build: Build, tmp_path: Path
    ) -> None:
        """The scan reads every layer: a CA copied in, then deleted, is still found."""
        if not check_container.HOST_CA_BUNDLE.is_file():
            pytest.skip(f"no {check_container.HOST_CA_BUNDLE} on this host")
        host_bundle = check_container.HOST_CA_BUNDLE.read_text(encoding="utf-8")
        certificate = sorted(certificates.certificates(host_bundle))[0]
        (tmp_path / "leak.crt").write_text(ssl.DER_cert_to_PEM_cert(certificate))
        (tmp_path / "Containerfile").write_text(
            f"FROM {build.image}\nCOPY leak.crt /tmp/leak.crt\nUSER 0\nRUN rm /tmp/leak.crt\n"
        )
        leaky = f"{build.image}-leak"
        podman.run("build", "--pull=never", "--network=host", f"--tag={leaky}", str(tmp_path))
        try:
            hits = certificates.image_files_containing(podman, leaky, {certificate})
        finally:
            podman.run("rmi", "--force", leaky, check=False)
        assert [hit for hit in hits if hit.endswith("tmp/leak.crt")]


class TestContainer:
    def test_becomes_ready_read_only_and_non_root(
        self, podman: Podman, container: Container
    ) -> None:
        """Read-only root and uid 10001: /readyz answers 200 and the root cannot be written."""
        assert httpx.get(f"{container.url}/readyz", timeout=5).status_code == 200
        uid = podman.run("exec", container.name, "python", "-c", "import os; print(os.getuid())")
        assert uid.stdout.strip() == str(APP_UID)
        write = podman.run("exec", container.name, "touch", "/opt/venv/x", check=False)
        assert write.returncode != 0
        assert "Read-only file system" in write.stderr

    def test_mints_through_the_emulator(self, container: Container) -> None:
        """POST /v1/realtime/client_secrets answers 200 with an ek_ secret."""
        response = container.mint()
        assert response.status_code == 200, response.text
        assert response.json()["value"].startswith("ek_")

    def test_metrics_only_on_the_metrics_port(self, container: Container) -> None:
        """/metrics is 404 on the API port and served on METRICS_PORT."""
        assert httpx.get(f"{container.url}/metrics", timeout=5).status_code == 404
        metrics = httpx.get(f"{container.metrics_url}/metrics", timeout=5)
        assert metrics.status_code == 200
        assert "rtp_mints_total" in metrics.text

    def test_healthcheck_is_healthy(self, container: Container) -> None:
        """The image's own HEALTHCHECK passes inside the running container."""
        assert container.healthcheck() == 0

    def test_sigterm_exits_0_within_the_grace_period(
        self, podman: Podman, build: Build, dockerfile: Dockerfile
    ) -> None:
        """After SIGTERM the container drains and exits with status 0 before the deadline."""
        container = started(podman, build, dockerfile)
        try:
            assert container.terminate() == 0, container.logs()
        finally:
            finish(container)


class TestCheckScript:
    def test_passes_on_the_real_image(self, build: Build) -> None:
        """`python -m deploy.check_container`, run whole, reports success."""
        assert check_container.main([]) == 0

    def test_without_podman_exits_2(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without podman the script says so and exits 2, building nothing."""
        monkeypatch.setattr(Podman, "find", classmethod(lambda cls: None))
        assert check_container.main([]) == 2
