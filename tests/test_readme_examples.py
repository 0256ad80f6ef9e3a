"""Every example of the README and of docs/clients.md runs, and prints what the docs show.

The examples are written against `http://127.0.0.1:8000`; this rewrites that
to a real `python -m service` started on a free port on the built-in
emulator. A block that uses `$CALLER_KEY` runs against a service with
`AUTH_MODE=api_key`, with `CALLER_KEY` set to a key it accepts; any other
block runs against one with `AUTH_MODE=none`, as `make run` starts it.

Each shell command must exit 0 and, where the block shows `# ->` output,
print that in substance (`tests/docs_examples.py` says how it compares).
Python examples run as scripts and must exit 0 and print their `# ->` lines
in order. `dotenv` blocks must load as `Settings`. The few commands that
cannot run here are in `EXEMPT`, with the reason; the browser snippets
(`js`) are what the demo page does, which the browser tests drive.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from service.auth import new_api_key
from tests import demo_page
from tests.docs_examples import (
    Block,
    code_blocks,
    commands,
    matches,
    prints_in_order,
    shown_in_python,
)
from tests.servers import ROOT, ServiceProcess

pytestmark = pytest.mark.timeout(180)

DOCUMENTED_URL = "http://127.0.0.1:8000"
"""Where the examples say the service is; rewritten to the started one."""
PAGES = (ROOT / "README.md", ROOT / "docs" / "clients.md")
SHELL = frozenset({"sh", "bash", "console"})
RUN = SHELL | {"python", "dotenv"}
NOT_RUN = {
    "js": "browser code: service/static/demo/app.js does the same, in tests/test_browser*.py",
    "": "untyped blocks are not examples",
}
EXEMPT = {
    "make run": "starts this service in the foreground; the fixtures start it as make run does",
    "make test": "runs the whole suite, this test included",
    "cp .env.example .env": "prepares Compose: tests/deploy/test_compose_stack.py follows it",
    "docker compose up --build": "needs Docker: test_compose_stack.py runs it with podman-compose",
}
"""Commands of the README that cannot run against a started service, and why."""
SERVICE_PREFIXES = (
    "OPENAI_",
    "POLICY_",
    "UPSTREAM_",
    "AUTH_",
    "RATE_",
    "QUOTA_",
    "REDIS_",
    "CORS_",
    "CALLS_",
    "SERVICE_",
    "API_DOCS",
)
MEDIA_ARGS = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")
"""A fake microphone, its permission granted: what pressing Connect asks of the browser."""
CONNECT_TIMEOUT_MS = 20_000
"""ICE and DTLS on loopback take ~1.5 s; a loaded machine takes longer, never forever."""
HANG_GUARD = 120.0
"""Seconds after which an example counts as hung (generous: a loaded machine is slow)."""


def blocks(*langs: str) -> list[Block]:
    """The pages' blocks in these languages."""
    return [block for page in PAGES for block in code_blocks(page) if block.lang in langs]


def by_where(blocks: list[Block]) -> list[Any]:
    """Blocks as pytest parameters named by page and line."""
    return [pytest.param(block, id=block.where) for block in blocks]


@pytest.fixture(name="caller", scope="module")
def fixture_caller() -> tuple[str, str]:
    """A caller key, and its AUTH_API_KEYS entry."""
    return new_api_key("docs")


def start(env: dict[str, str]) -> ServiceProcess:
    """`python -m service` on the emulator, ready."""
    service = ServiceProcess(
        {"UPSTREAM_EMULATOR": "true", "WORKERS": "1", "DEMO_PAGE": "true", **env}
    )
    try:
        service.wait_ready()
    except BaseException:
        service.stop()
        raise
    return service


@pytest.fixture(name="open_service", scope="module")
def fixture_open_service() -> Iterator[ServiceProcess]:
    """The service as `make run` starts it: no caller authentication, the demo page on."""
    service = start({"AUTH_MODE": "none"})
    yield service
    service.stop()


@pytest.fixture(name="keyed_service", scope="module")
def fixture_keyed_service(caller: tuple[str, str]) -> Iterator[ServiceProcess]:
    """The service with `AUTH_MODE=api_key`, accepting the module's caller key."""
    service = start({"AUTH_MODE": "api_key", "AUTH_API_KEYS": caller[1]})
    yield service
    service.stop()


def service_for(
    request: pytest.FixtureRequest, block: Block, caller: tuple[str, str]
) -> tuple[ServiceProcess, dict[str, str]]:
    """The service a block runs against, and the environment it runs in."""
    keyed = "CALLER_KEY" in block.text
    service: ServiceProcess = request.getfixturevalue("keyed_service" if keyed else "open_service")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(SERVICE_PREFIXES) and k.lower() not in {"http_proxy", "https_proxy"}
    }
    env.update({"CALLER_KEY": caller[0], "NO_PROXY": "127.0.0.1,localhost"})
    return service, env


def runnable(block: Block, url: str) -> str:
    """The block's text aimed at the started service and this interpreter."""
    return block.text.replace(DOCUMENTED_URL, url).replace(".venv/bin/python", sys.executable)


def shell_script(block: Block, url: str, folder: Path) -> str:
    """One bash script running each command of the block, its output in a file per command."""
    lines = ["set -o pipefail"]
    for number, command in enumerate(
        commands(Block(block.path, block.line, block.lang, runnable(block, url)))
    ):
        if command.text in EXEMPT:
            continue
        out = folder / f"{number}.out"
        lines.append(
            f"{{ {command.text}\n}} >'{out}' 2>&1 || {{ echo \"exit $?\" >>'{out}'; exit 1; }}"
        )
    return "\n".join(lines) + "\n"


class TestReadmeShell:
    """The README's and docs/clients.md's shell examples against a started service."""

    @pytest.mark.parametrize("block", by_where(blocks(*SHELL)))
    def test_block_runs_and_prints_what_it_shows(
        self, block: Block, tmp_path: Path, request: pytest.FixtureRequest, caller: tuple[str, str]
    ) -> None:
        """Every command exits 0, and prints what its `# ->` lines show."""
        to_run = [c for c in commands(block) if c.text not in EXEMPT]
        if not to_run:
            pytest.skip(f"every command is exempt: {[EXEMPT[c.text] for c in commands(block)]}")
        service, env = service_for(request, block, caller)
        script = shell_script(block, service.url, tmp_path)
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=HANG_GUARD,
        )
        ran = {int(p.stem): p.read_text() for p in tmp_path.glob("*.out")}
        assert done.returncode == 0, f"{block.where}: a command failed:\n{ran}\n{done.stderr}"
        for number, command in enumerate(commands(block)):
            if command.text in EXEMPT or command.expected is None:
                continue
            output = ran[number]
            assert matches(command.expected, output), (
                f"{block.where}: `{command.text}` printed\n{output}\nwhere the docs show\n"
                f"{command.expected}"
            )


class TestPythonExamples:
    """docs/clients.md's Python examples, with the openai SDK, against a started service."""

    @pytest.mark.parametrize("block", by_where(blocks("python")))
    def test_example_runs_and_prints_what_it_shows(
        self, block: Block, tmp_path: Path, request: pytest.FixtureRequest, caller: tuple[str, str]
    ) -> None:
        """The script exits 0 and prints each of its `# ->` lines, in order."""
        service, env = service_for(request, block, caller)
        script = tmp_path / "docs_example.py"
        script.write_text(runnable(block, service.url), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-I", str(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=HANG_GUARD,
        )
        assert done.returncode == 0, f"{block.where} failed:\n{done.stdout}\n{done.stderr}"
        shown = shown_in_python(block)
        assert prints_in_order(shown, done.stdout), (
            f"{block.where} printed\n{done.stdout}\nwhere the docs show\n" + "\n".join(shown)
        )


class TestDotenvExamples:
    """The README's `.env` examples are configurations the service starts with."""

    @pytest.mark.parametrize("block", by_where(blocks("dotenv")))
    def test_example_loads_as_settings(self, block: Block, tmp_path: Path) -> None:
        """The block, as `.env`, with the key in the secrets directory, loads as Settings."""
        (tmp_path / ".env").write_text(block.text, encoding="utf-8")
        secrets = tmp_path / "secrets"
        secrets.mkdir()
        (secrets / "openai_api_key").write_text("sk-docs-example-not-a-key")
        env = {k: v for k, v in os.environ.items() if not k.startswith(SERVICE_PREFIXES)}
        env["SECRETS_DIR"] = str(secrets)
        program = (
            "from service.config import load_settings\n"
            "s = load_settings()\n"
            "print(s.auth_mode, ','.join(s.auth_api_keys), ','.join(s.policy.allowed_models))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", program],
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=HANG_GUARD,
        )
        assert done.returncode == 0, f"{block.where} does not load:\n{done.stderr}"
        named = dict(line.split("=", 1) for line in block.text.splitlines() if "=" in line)
        assert done.stdout.split() == [
            named["AUTH_MODE"],
            named["AUTH_API_KEYS"].split(":")[0],
            named["POLICY_ALLOWED_MODELS"],
        ]


class TestCoverage:
    """What is run, what is not and why, and that the lists match the pages."""

    def test_every_block_is_run_or_says_why_not(self) -> None:
        """Each block's language is run, or is in NOT_RUN with its reason."""
        languages = {block.lang for page in PAGES for block in code_blocks(page)}
        assert languages <= RUN | set(NOT_RUN), languages - RUN - set(NOT_RUN)

    def test_pages_have_examples(self) -> None:
        """The README has shell examples and clients.md Python ones: the reader finds them."""
        wheres = {block.path.name for block in blocks(*SHELL)}
        assert {"README.md", "clients.md"} <= wheres
        assert {block.path.name for block in blocks("python")} == {"clients.md"}

    def test_exemptions_name_commands_in_the_readme(self) -> None:
        """EXEMPT lists only commands the README really has, so it cannot rot."""
        readme = [
            c.text for b in code_blocks(ROOT / "README.md") if b.lang in SHELL for c in commands(b)
        ]
        assert set(EXEMPT) <= set(readme), set(EXEMPT) - set(readme)

    def test_the_demo_page_the_readme_opens_is_served(self, open_service: ServiceProcess) -> None:
        """The demo URL of the walk-through answers on the service `make run` starts."""
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        assert f"<{DOCUMENTED_URL}/demo/>" in readme
        page = httpx.get(f"{open_service.url}/demo/", timeout=10)
        assert page.status_code == 200
        assert "Connect" in page.text


class TestWalkThrough:
    """The README's walk-through ends with a call from the demo page, as `make run` serves it."""

    @pytest.mark.browser
    def test_connect_on_the_demo_page_makes_a_call(self, open_service: ServiceProcess) -> None:
        """Connect creates a Realtime call through the in-process emulator; Hang up ends it."""
        with demo_page.chromium(MEDIA_ARGS) as browser, demo_page.fresh_page(browser) as page:
            page.goto(f"{open_service.url}/demo/")
            expect(page.locator("#connect")).to_be_enabled(timeout=CONNECT_TIMEOUT_MS)
            page.click("#connect")
            expect(page.locator("#call-id")).to_have_text(re.compile(r"^rtc_"))
            expect(page.locator("body")).to_contain_text(
                "session.created", timeout=CONNECT_TIMEOUT_MS
            )
            page.click("#hangup")
            expect(page.locator("#status")).to_have_text("Hung up.")


class TestMatching:
    """How an example's output is compared with what the docs show."""

    def test_json_matches_in_substance(self) -> None:
        """Compact JSON matches the spaced form shown, `...` standing for anything."""
        assert matches(
            '{"value": "ek_...", "session": {...}}', '{"value":"ek_1","session":{"a":1}}'
        )

    def test_a_different_value_does_not_match(self) -> None:
        """A value other than the one shown fails the comparison."""
        assert not matches('{"code": "policy_violation", ...}', '{"code":"invalid_api_key","x":1}')

    def test_python_lines_must_come_in_order(self) -> None:
        """Shown lines out of order, or missing, fail the comparison."""
        assert prints_in_order(["a ...", "c"], "a 1\nb\nc\n")
        assert not prints_in_order(["c", "a ..."], "a 1\nb\nc\n")
