"""uvicorn's private internals that `service/server/protocol.py` builds on are still there.

The HTTP protocol's limits (head cap, read deadlines, connection cap) subclass
uvicorn's httptools protocol, which is not public API. pyproject.toml pins
uvicorn to the minor version they were written against; these tests fail
when the installed uvicorn leaves that pin, or when what the subclass
overrides, calls or reads changes shape, before any behaviour test has to
find out.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import re
import tomllib
from pathlib import Path

import pytest
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from service.server.protocol import LimitedHttpToolsProtocol

ROOT = Path(__file__).parents[1]
OVERRIDDEN = (
    "connection_made",
    "connection_lost",
    "data_received",
    "on_message_begin",
    "on_headers_complete",
    "on_message_complete",
    "send_400_response",
)
"""The methods `LimitedHttpToolsProtocol` overrides and calls through `super()`."""
READ = ("connections", "cycle", "timeout_keep_alive_task", "url", "headers", "loop", "logger")
"""The attributes it reads on itself."""


def version(text: str) -> tuple[int, ...]:
    """`0.54.1` -> `(0, 54, 1)`."""
    return tuple(int(part) for part in re.findall(r"\d+", text))


def uvicorn_pin() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The uvicorn range pyproject.toml declares: `>=low,<high`."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    [requirement] = [d for d in project["dependencies"] if re.match(r"uvicorn\b", d)]
    found = re.fullmatch(r"uvicorn>=([\d.]+),<([\d.]+)", requirement)
    assert found, f"uvicorn is not pinned to a range: {requirement}"
    return version(found.group(1)), version(found.group(2))


class TestUvicornInternals:
    """What the limited protocol needs of uvicorn's httptools protocol."""

    def test_installed_uvicorn_is_the_pinned_minor_version(self) -> None:
        """The pin names one minor version, and the installed uvicorn is inside it."""
        low, high = uvicorn_pin()
        assert high[:2] == (low[0], low[1] + 1), f"more than one minor version: {low}..{high}"
        assert low <= version(importlib.metadata.version("uvicorn")) < high

    @pytest.mark.parametrize("name", OVERRIDDEN)
    def test_overridden_methods_exist(self, name: str) -> None:
        """Every method the subclass overrides is uvicorn's own, with the arguments it passes."""
        theirs_params = list(inspect.signature(getattr(HttpToolsProtocol, name)).parameters)
        ours = getattr(LimitedHttpToolsProtocol, name)
        ours_params = list(inspect.signature(ours).parameters)
        assert ours_params == theirs_params, (name, theirs_params)

    def test_constructor_takes_what_the_subclass_passes(self) -> None:
        """`__init__(config, server_state, app_state, _loop)`, as the subclass calls it."""
        params = list(inspect.signature(HttpToolsProtocol.__init__).parameters)
        assert params[:5] == ["self", "config", "server_state", "app_state", "_loop"]

    def test_attributes_it_reads_are_set(self) -> None:
        """A protocol that has begun a request has every attribute the subclass reads."""

        async def app(scope: object, receive: object, send: object) -> None:
            return None

        loop = asyncio.new_event_loop()
        try:
            config = Config(app=app, http="httptools")
            config.load()
            protocol = HttpToolsProtocol(config, ServerState(), {}, loop)
            protocol.on_message_begin()
            missing = [name for name in READ if not hasattr(protocol, name)]
        finally:
            loop.close()
        assert not missing, missing
        assert hasattr(ServerState(), "default_headers")

    def test_431_status_line_is_known(self) -> None:
        """The 431 answer is written with uvicorn's own status line for it."""
        assert STATUS_LINE[431].startswith(b"HTTP/1.1 431 ")
