"""tests/node/'s npm packages, installed from its package-lock.json (`npm ci`) when stale.

The openai Node SDK (tests/test_sdk_node.py), and the Agents SDK with esbuild
(tests/test_browser_agents_sdk.py), are pinned by the committed lockfile. A
checkout whose node_modules misses a package, or holds another version of
one, is reinstalled exactly from it; without node or npm the tests skip, or
fail under REQUIRE_NODE=1.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.servers import require

NODE_DIR = Path(__file__).with_name("node")


def _installed_as_locked() -> bool:
    """Whether every package the lockfile pins is in node_modules at its locked version."""
    locked = json.loads((NODE_DIR / "package-lock.json").read_text(encoding="utf-8"))
    for path, entry in locked["packages"].items():
        if not path or entry.get("optional"):
            continue
        manifest = NODE_DIR / path / "package.json"
        if not manifest.is_file():
            return False
        if json.loads(manifest.read_text(encoding="utf-8")).get("version") != entry["version"]:
            return False
    return True


def node_with_packages() -> str:
    """Node.js, with tests/node's packages installed as locked (npm ci, only when needed)."""
    node = require("node", "REQUIRE_NODE")
    npm = require("npm", "REQUIRE_NODE")
    if not _installed_as_locked():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--silent"],
            cwd=NODE_DIR,
            check=True,
            timeout=300,
        )
    return node
