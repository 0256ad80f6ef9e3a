"""The documentation stays true: the generated reference, the links, the profiles example.

The configuration reference is generated from the fields' docstrings
(`service.config.reference`), so these tests fail when a field changes and
`docs/reference.md` was not regenerated, and when a field has no docstring.
The shell and Python examples run in `tests/test_readme_examples.py`.
"""

from __future__ import annotations

import os
import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import BaseModel

from service.config import Settings
from service.config.reference import PAGE, SECRETS, render, variables
from service.policy import Policy, load_profiles
from service.policy.live import LivePolicy
from tests.deploy.test_k8s import kustomize
from tests.docs_examples import code_blocks
from tests.servers import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (?P<title>.+)$", re.MULTILINE)


def env_names(model: type[BaseModel], prefix: str) -> set[str]:
    """The variables a model's fields are read from, straight from the model."""
    return {f"{prefix}{name}".upper() for name in model.model_fields} - {"POLICY", "POLICY_LIVE"}


def anchor(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a Markdown page, outside code blocks."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    return {anchor(match["title"]) for match in HEADING.finditer(text)}


def local_links(page: Path) -> list[str]:
    """The page's Markdown links that point into the repository (not URLs)."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    return [
        match["target"]
        for match in LINK.finditer(text)
        if not re.match(r"[a-z]+:", match["target"])
    ]


def resolves(page: Path, target: str) -> bool:
    """Whether a link from `page` names an existing file, and its #anchor a heading there."""
    path, _, fragment = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    if not file.exists():
        return False
    return not fragment or file.suffix != ".md" or fragment in anchors(file)


class TestReference:
    """docs/reference.md is the generator's output, and the generator covers every field."""

    def test_page_is_current(self) -> None:
        """The committed page is exactly what the generator prints now."""
        assert PAGE.read_text(encoding="utf-8") == render(), (
            "docs/reference.md is stale: run python -m service.config.reference --write"
        )

    def test_every_variable_is_in_it(self) -> None:
        """Every Settings, Policy and GPT-Live policy field has its variable in the page."""
        page = PAGE.read_text(encoding="utf-8")
        names = (
            env_names(Settings, "")
            | env_names(Policy, "POLICY_")
            | env_names(LivePolicy, "POLICY_LIVE_")
            | {"SECRETS_DIR"}
        )
        missing = sorted(name for name in names if f"| `{name}` |" not in page)
        assert not missing, f"not in docs/reference.md: {missing}"

    def test_every_variable_is_described(self) -> None:
        """Each field has a docstring: the reference's one line comes from it."""
        undocumented = [v.name for _, v in variables() if v.description == "(undocumented)"]
        assert not undocumented, f"give these fields a docstring: {undocumented}"

    def test_secrets_show_no_value(self) -> None:
        """Credentials read `unset`, whatever default the code holds."""
        defaults = {v.name: v.default for _, v in variables()}
        assert {name: defaults[name] for name in SECRETS} == dict.fromkeys(SECRETS, "unset")

    def test_defaults_are_the_codes(self) -> None:
        """A stated default is the value the code starts with, written as env text."""
        defaults = {v.name: v.default for _, v in variables()}
        assert defaults["PORT"] == "8000"
        assert defaults["POLICY_ALLOWED_MODELS"] == "gpt-realtime-2,gpt-realtime-2.1-mini"
        assert defaults["RATE_LIMIT_DRY_RUN_PER_IDENTITY"] == "60/minute"
        assert defaults["AUTH_MODE"] == "required"


class TestLinks:
    """Links between the README and docs/ resolve."""

    @pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
    def test_local_links_resolve(self, page: Path) -> None:
        """Every link to a local file names one that exists, and its #anchor a heading there."""
        broken = [target for target in local_links(page) if not resolves(page, target)]
        assert not broken, f"{page.name}: broken links {broken}"

    def test_readme_links_every_docs_page(self) -> None:
        """The README's links reach every page in docs/."""
        linked = {
            (ROOT / target.partition("#")[0]).resolve()
            for target in local_links(ROOT / "README.md")
        }
        unlinked = [p.name for p in PAGES[1:] if p.resolve() not in linked]
        assert not unlinked, f"not linked from the README: {unlinked}"

    def test_anchor_is_githubs(self) -> None:
        """Headings become GitHub's anchors (a wrong slug would pass broken links)."""
        assert anchor("Threat model: what the policy can and cannot guarantee") == (
            "threat-model-what-the-policy-can-and-cannot-guarantee"
        )
        assert anchor("The Session, and how it reaches OpenAI's GA API") == (
            "the-session-and-how-it-reaches-openais-ga-api"
        )


class TestConfigurationExamples:
    """docs/configuration.md's profiles example is a file the service starts with."""

    def test_profiles_example_loads(self, tmp_path: Path) -> None:
        """The TOML example validates as profiles over the default policy."""
        block, *_ = [b for b in code_blocks(ROOT / "docs" / "configuration.md") if b.lang == "toml"]
        path = tmp_path / "profiles.toml"
        path.write_text(block.text, encoding="utf-8")
        profiles = load_profiles(Policy(), path)
        staff, staff_policy = profiles.for_caller("partner-app")
        free, free_policy = profiles.for_caller("someone-else")
        assert (staff, staff_policy.live.default_model) == ("staff", "gpt-live-1.1")
        assert (free, free_policy.default_model) == ("free", "gpt-realtime-2.1-mini")

    def test_budget_example_loads_into_the_profiles_example(self, tmp_path: Path) -> None:
        """The `[profiles.free.budget]` example, added to the profiles example, gives the free
        profile its own dollars."""
        profiles, budget, *_ = [
            b for b in code_blocks(ROOT / "docs" / "configuration.md") if b.lang == "toml"
        ]
        path = tmp_path / "profiles.toml"
        path.write_text(profiles.text + "\n" + budget.text, encoding="utf-8")
        loaded = load_profiles(Policy(), path)
        free = loaded.budgets["free"]
        assert (free.quota_usd_per_day, free.calls_max_usd) == (Decimal(2), Decimal("0.5"))


class TestDeployingExamples:
    """docs/deploying.md's overlay points the manifests at your registry, as it says."""

    def test_overlay_example_renders_with_your_image(self, tmp_path: Path) -> None:
        """The overlay, next to a copy of secret.env.example, renders your image and namespace."""
        (block,) = [b for b in code_blocks(ROOT / "docs" / "deploying.md") if b.lang == "yaml"]
        overlay = tmp_path / "overlays" / "prod"
        overlay.mkdir(parents=True)
        base = os.path.relpath(ROOT / "deploy" / "k8s", overlay)  # kustomize wants it relative
        text = block.text.replace("../../deploy/k8s", base)
        assert text != block.text, "the example no longer names ../../deploy/k8s"
        (overlay / "kustomization.yaml").write_text(text, encoding="utf-8")
        shutil.copy(ROOT / "deploy" / "k8s" / "secret.env.example", overlay / "secret.env")
        rendered = kustomize(overlay)
        proxy = next(
            d
            for d in rendered
            if d["kind"] == "Deployment" and "redis" not in d["metadata"]["name"]
        )
        (container,) = proxy["spec"]["template"]["spec"]["containers"]
        assert container["image"] == "registry.example.com/team/realtime-token-proxy:0.1.0"
        assert {d["metadata"].get("namespace") for d in rendered} == {"realtime-token-proxy"}
