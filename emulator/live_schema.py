"""Generates `schemas/live.json`, GPT-Live's request schema, from the openai SDK's types.

OpenAI publishes no schema for `POST /v1/live/sessions`; the openai Python
SDK's generated TypedDicts (`openai.types.live.live_create_params`) are the
reference. The SDK is a development dependency only, so the emulator ships
their JSON Schema (pydantic's `TypeAdapter(LiveCreateParams).json_schema()`),
structure only (titles and descriptions dropped) and closed as
`schema.closed` closes OpenAI's published one. A test regenerates it and
fails on any difference, so an SDK upgrade that changes Live's types shows.

The same goes for answering a Live SIP call (`POST /v1/live/sessions/{id}/accept`,
`/reject`, `/refer`): `schemas/live-accept.json`, `live-reject.json` and
`live-refer.json` are the SDK's `SessionAcceptParams`, `SessionRejectParams`
and `SessionReferParams`.

Regenerate with `uv run python -m emulator.live_schema`.
"""

from __future__ import annotations

import json
from typing import Any

from emulator.schema import LIVE_FILE, closed, live_sip_file

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


def generate(params: Any = None) -> str:
    """A schema file's text, freshly generated from the installed SDK's `params` type
    (`LiveCreateParams` by default)."""
    # Imported here: the SDK and pydantic are development tools, not the emulator's.
    from openai.types.live.live_create_params import LiveCreateParams
    from pydantic import TypeAdapter

    adapter: TypeAdapter[Any] = TypeAdapter(LiveCreateParams if params is None else params)
    schema = closed(_structure(adapter.json_schema()))
    return json.dumps(schema, indent=1, sort_keys=True) + "\n"


def sip_params() -> dict[str, Any]:
    """The SDK's types of the Live SIP calls' answers, by action."""
    from openai.types.live import session_accept_params, session_refer_params, session_reject_params

    return {
        "accept": session_accept_params.SessionAcceptParams,
        "reject": session_reject_params.SessionRejectParams,
        "refer": session_refer_params.SessionReferParams,
    }


def main() -> None:
    """Write the freshly generated schemas over the shipped ones."""
    LIVE_FILE.write_text(generate(), encoding="utf-8")
    for action, params in sip_params().items():
        live_sip_file(action).write_text(generate(params), encoding="utf-8")


if __name__ == "__main__":
    main()
