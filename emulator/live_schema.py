"""Generates `schemas/live.json`, GPT-Live's request schema, from the openai SDK's types.

OpenAI publishes no schema for `POST /v1/live/sessions`; the openai Python
SDK's generated TypedDicts (`openai.types.live.live_create_params`) are the
reference. The SDK is a development dependency only, so the emulator ships
their JSON Schema (pydantic's `TypeAdapter(LiveCreateParams).json_schema()`),
structure only (titles and descriptions dropped) and closed as
`schema.closed` closes OpenAI's published one. A test regenerates it and
fails on any difference, so an SDK upgrade that changes Live's types shows.

Regenerate with `uv run python -m emulator.live_schema`.
"""

from __future__ import annotations

import json
from typing import Any

from emulator.schema import LIVE_FILE, closed

ANNOTATIONS = frozenset({"title", "description"})
NAMED = frozenset({"properties", "$defs", "patternProperties"})
"""Keywords whose keys are names (a property may be called `title`), not keywords."""


def _structure(node: Any) -> Any:
    """The schema without its annotations, as the published copy is."""
    if isinstance(node, list):
        return [_structure(item) for item in node]
    if not isinstance(node, dict):
        return node
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in ANNOTATIONS:
            continue
        if key in NAMED and isinstance(value, dict):
            result[key] = {name: _structure(schema) for name, schema in value.items()}
        else:
            result[key] = _structure(value)
    return result


def generate() -> str:
    """The schema file's text, freshly generated from the installed SDK."""
    # Imported here: the SDK and pydantic are development tools, not the emulator's.
    from openai.types.live.live_create_params import LiveCreateParams
    from pydantic import TypeAdapter

    schema = closed(_structure(TypeAdapter(LiveCreateParams).json_schema()))
    return json.dumps(schema, indent=1, sort_keys=True) + "\n"


def main() -> None:
    """Write the freshly generated schema over the shipped one."""
    LIVE_FILE.write_text(generate(), encoding="utf-8")


if __name__ == "__main__":
    main()
