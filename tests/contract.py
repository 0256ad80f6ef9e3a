"""Contract check: a body we send upstream must validate against OpenAI's published schema.

`openai-realtime-schemas.min.json` is the structure-only copy of OpenAI's
OpenAPI schemas (MIT). The spec leaves objects open, but the live API rejects
unknown parameters, so every object schema is closed here, and OpenAPI 3.0's
`nullable` is turned into JSON Schema's null type.

The copy is `../shared/upstream/openai-realtime-schemas.min.json` (which adds
the translation endpoint) with two repairs: `RealtimeFunctionTool` keeps its
`description` property (lost when descriptions were stripped), and
`noise_reduction.strength` is added where the openai SDK 3.57 types have it
(newer than the published spec).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_FILE = Path(__file__).with_name("openai-realtime-schemas.min.json")


def _close(node: Any) -> Any:
    if isinstance(node, dict):
        node = {key: _close(value) for key, value in node.items()}
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        if node.pop("nullable", False):
            node = {"anyOf": [node, {"type": "null"}]}
        return node
    if isinstance(node, list):
        return [_close(item) for item in node]
    return node


@cache
def _validator(name: str) -> Draft202012Validator:
    document = json.loads(SCHEMA_FILE.read_text())
    closed = _close(copy.deepcopy(document))
    schema = {"$ref": f"#/components/schemas/{name}", "components": closed["components"]}
    return Draft202012Validator(schema)


def ga_errors(body: Any, name: str = "RealtimeCreateClientSecretRequest") -> list[str]:
    """Every schema violation in `body`, as readable strings (empty when valid)."""
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in _validator(name).iter_errors(body)
    ]


def assert_valid_ga_request(body: Any, name: str = "RealtimeCreateClientSecretRequest") -> None:
    """Fail with the schema's own words if `body` is not a valid GA mint request."""
    errors = ga_errors(body, name)
    assert not errors, errors


def assert_valid_translation_request(body: Any) -> None:
    """Fail with the schema's own words if `body` is not a valid translation mint request."""
    assert_valid_ga_request(body, "RealtimeTranslationClientSecretCreateRequest")
