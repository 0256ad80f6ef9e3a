"""The GPT-Live part of the policy: `POLICY_LIVE_*`, or a `[live]` table per profile.

GPT-Live sessions are created by the server (`POST /v1/live/sessions`), so
every field of the session the browser uses passes through here first:

- models: `POLICY_LIVE_ALLOWED_MODELS`, `POLICY_LIVE_DEFAULT_MODEL`; voices
  come from `POLICY_ALLOWED_VOICES` like every other session's;
- frontend instructions: `POLICY_LIVE_INSTRUCTIONS` and
  `POLICY_LIVE_INSTRUCTIONS_MODE` (`server`, `append`, `client`), as for Realtime;
- delegation (the backend model, its prompt and tools): a JSON file,
  `POLICY_LIVE_DELEGATION_FILE`, read at start-up. The backend prompt is the
  operator's business logic, so a caller's `delegation` is refused unless
  `POLICY_LIVE_DELEGATION_MODE=client`;
- the browser's data channel: `POLICY_LIVE_CLIENT_EVENTS`, the client events
  it may send. The service always sets it, because OpenAI's default is "all":
  a browser could otherwise `session.update` the delegation away or append
  its own instructions. The default allows every event that does not change
  the session or what the model is told;
- triggers (Decisions questions OpenAI runs on every transcript delta, on the
  server's key): `POLICY_LIVE_TRIGGERS` (`off`, `server`, `client`), the
  server's own in `POLICY_LIVE_TRIGGERS_FILE`, a caller's capped by
  `POLICY_LIVE_MAX_TRIGGER_QUESTIONS` and `POLICY_LIVE_MAX_TRIGGER_CHARS`;
- startup `input` messages: the roles in `POLICY_LIVE_INPUT_ROLES`;
- `POLICY_LIVE_STORE`: `off` (the default: nothing stored), `client`, `on`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeAlias

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import NoDecode

from service.contract.live import (
    LIVE_CLIENT_EVENTS,
    LIVE_SESSION_CHANGING_EVENTS,
    parse_triggers,
)
from service.contract.live_delegation import parse_delegation

EVENT_TYPE = re.compile(r"[a-z_]+(\.[a-z_]+)+")
DEFAULT_CLIENT_EVENTS = tuple(
    e for e in LIVE_CLIENT_EVENTS if e not in LIVE_SESSION_CHANGING_EVENTS
)


def _csv(value: object) -> object:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def read_client_events(value: object) -> object:
    """`all`, or a comma-separated list of client event types (each checked for shape)."""
    if isinstance(value, str) and value.strip() == "all":
        return "all"
    if value == "all":
        return value
    events = _csv(value)
    if isinstance(events, list | tuple):
        bad = [e for e in events if not (isinstance(e, str) and EVENT_TYPE.fullmatch(e))]
        if bad:
            raise ValueError(f"not client event types: {', '.join(map(str, bad))}")
    return events


def _json_file(value: object, what: str) -> tuple[object, str] | None:
    """The JSON a setting names (a path), or the value itself; None for an empty path."""
    if not isinstance(value, str | Path):
        return value, what
    if not str(value).strip():
        return None
    path = Path(str(value).strip())
    try:
        return json.loads(path.read_text(encoding="utf-8")), str(path)
    except OSError as exc:
        raise ValueError(f"cannot read {what} file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}") from None


def read_delegation(value: object) -> object:
    """The delegation object from a JSON file (a path), validated as OpenAI's; kept secret.

    It is held as a `SecretStr` of its JSON: it may carry tool credentials and
    it is the operator's backend prompt, so no repr, log line or dump shows it.
    """
    if value is None or isinstance(value, SecretStr):
        return value
    read = _json_file(value, "delegation")
    if read is None:
        return None
    data, source = read
    parse_delegation(data, source)
    return SecretStr(json.dumps(data, separators=(",", ":")))


def read_triggers(value: object) -> object:
    """The server's `triggers` list from a JSON file (a path), validated as OpenAI's; secret.

    The questions are the operator's (what it watches every conversation
    for), so like the delegation they are held as a `SecretStr` of their JSON.
    """
    if value is None or isinstance(value, SecretStr):
        return value
    read = _json_file(value, "triggers")
    if read is None:
        return None
    data, source = read
    parse_triggers(data, source)
    return SecretStr(json.dumps(data, separators=(",", ":")))


def trigger_questions(triggers: list[dict[str, Any]]) -> int:
    """How many Decisions questions a `triggers` list asks (each runs on every delta)."""
    return sum(len(t.get("decisions", {}).get("questions", [])) for t in triggers)


def question_chars(question: object) -> int:
    """A question's size as POLICY_LIVE_MAX_TRIGGER_CHARS counts it: its compact JSON."""
    return len(json.dumps(question, separators=(",", ":"), ensure_ascii=False))


InputRole: TypeAlias = Literal["developer", "user", "assistant"]

ClientEvents: TypeAlias = Annotated[
    Literal["all"] | tuple[str, ...], NoDecode, BeforeValidator(read_client_events)
]


class LivePolicy(BaseModel):
    """What GPT-Live sessions may be. Field = `POLICY_LIVE_<NAME>`."""

    # Each field's docstring is its description: docs/reference.md is generated from them.
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    allowed_models: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_csv)] = (
        "gpt-live-1",
        "gpt-live-1.1",
    )
    """GPT-Live models callers may ask for; empty turns GPT-Live off. Voices come from
    POLICY_ALLOWED_VOICES."""
    default_model: str = "gpt-live-1"
    """The GPT-Live model of a session that names none."""
    instructions: Annotated[str | None, BeforeValidator(lambda v: None if v == "" else v)] = None
    """The server's frontend instructions for GPT-Live sessions."""
    instructions_mode: Literal["server", "append", "client"] = "client"
    """`server`, `append` or `client`, as POLICY_INSTRUCTIONS_MODE; unless `client`, startup
    `input` may not carry developer messages."""
    delegation_file: Annotated[SecretStr | None, NoDecode, BeforeValidator(read_delegation)] = None
    """The delegation every session gets (JSON, OpenAI's `delegation` object)."""
    delegation_mode: Literal["server", "client"] = "server"
    """`server`: a caller's `delegation` is refused; `client`: callers may send their own."""
    client_events: ClientEvents = DEFAULT_CLIENT_EVENTS
    """Client events the browser may send on its data channel (comma-separated, or `all`); the
    default leaves out every event that changes the session or what the model is told."""
    store: Literal["off", "client", "on"] = "off"
    """Whether GPT-Live sessions are stored: `off` (`store: true` is refused), `client`, or `on`
    (always)."""
    triggers: Literal["off", "server", "client"] = "off"
    """`off`: no triggers (a caller's are refused); `server`: POLICY_LIVE_TRIGGERS_FILE's only;
    `client`: a caller's within the caps below (the file's when they send none)."""
    triggers_file: Annotated[SecretStr | None, NoDecode, BeforeValidator(read_triggers)] = None
    """The server's triggers (JSON, OpenAI's `triggers` list), never shown to callers."""
    max_trigger_questions: Annotated[int, Field(ge=0)] = 4
    """Most Decisions questions a caller's triggers may ask in all (each runs on every
    transcript delta, billed to the server's key)."""
    max_trigger_chars: Annotated[int, Field(ge=0)] = 4000
    """Most characters a caller's trigger questions may total, counted as compact JSON."""
    input_roles: Annotated[tuple[InputRole, ...], NoDecode, BeforeValidator(_csv)] = ("user",)
    """Roles a caller's startup `input` messages may have: `user` by default (what the user
    could say anyway); `assistant` puts words in the model's mouth, `developer` is
    instructions (needs POLICY_LIVE_INSTRUCTIONS_MODE=client)."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = []
        if self.allowed_models and self.default_model not in self.allowed_models:
            problems.append(
                f"POLICY_LIVE_DEFAULT_MODEL '{self.default_model}' is not in "
                "POLICY_LIVE_ALLOWED_MODELS"
            )
        if self.instructions_mode == "server" and self.instructions is None:
            problems.append("POLICY_LIVE_INSTRUCTIONS_MODE=server needs POLICY_LIVE_INSTRUCTIONS")
        if "developer" in self.input_roles and self.instructions_mode != "client":
            problems.append(
                "POLICY_LIVE_INPUT_ROLES may name developer only with "
                "POLICY_LIVE_INSTRUCTIONS_MODE=client (developer messages are instructions)"
            )
        if self.triggers == "server" and self.triggers_file is None:
            problems.append("POLICY_LIVE_TRIGGERS=server needs POLICY_LIVE_TRIGGERS_FILE")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def delegation(self) -> dict[str, Any] | None:
        """The server's delegation object, as sent upstream (None: none configured)."""
        if self.delegation_file is None:
            return None
        value: dict[str, Any] = json.loads(self.delegation_file.get_secret_value())
        return value

    def server_triggers(self) -> list[dict[str, Any]] | None:
        """The server's triggers, as sent upstream (None: no file configured)."""
        if self.triggers_file is None:
            return None
        value: list[dict[str, Any]] = json.loads(self.triggers_file.get_secret_value())
        return value

    def public_view(self, voices: tuple[str, ...], default_voice: str) -> dict[str, Any]:
        """The Live part of `GET /v1/policy`: choices, never the instructions or delegation."""
        delegation = self.delegation()
        return {
            "models": {"allowed": list(self.allowed_models), "default": self.default_model},
            "voices": {"allowed": list(voices), "default": default_voice},
            "instructions_mode": self.instructions_mode,
            "delegation": {
                "mode": self.delegation_mode,
                "server": delegation.get("type") if delegation else None,
            },
            "client_events": (
                self.client_events if self.client_events == "all" else list(self.client_events)
            ),
            "store": self.store,
            "triggers": {
                "mode": self.triggers,
                "server": self.triggers_file is not None and self.triggers != "off",
                **(
                    {
                        "max_questions": self.max_trigger_questions,
                        "max_chars": self.max_trigger_chars,
                    }
                    if self.triggers == "client"
                    else {}
                ),
            },
            "input_roles": list(self.input_roles),
        }


def fold_live(data: object) -> object:
    """`POLICY_LIVE_X` arrives as a `live_x` policy key: gather those into the `live` table.

    A profile's `[live]` table is merged over the base policy's by
    `load_profiles`; flat `live_x` keys work there too.
    """
    if not isinstance(data, dict):
        return data
    flat = {k.removeprefix("live_"): v for k, v in data.items() if k.startswith("live_")}
    if not flat:
        return data
    rest = {k: v for k, v in data.items() if not k.startswith("live_")}
    live = rest.get("live")
    if isinstance(live, BaseModel):
        live = live.model_dump()
    return {**rest, "live": {**(live if isinstance(live, dict) else {}), **flat}}
