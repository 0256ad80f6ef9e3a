"""Per-caller policy: named profiles that override the env policy field by field.

`POLICY_PROFILES_FILE` (TOML, or YAML by extension) looks like::

    default = "free"                 # optional: profile for unassigned callers

    [callers]                        # API-key name or gateway identity -> profile
    partner-app = "staff"

    [profiles.free]
    allowed_models = ["gpt-realtime-mini"]
    default_model = "gpt-realtime-mini"
    allowed_voices = ["marin", "cedar"]
    default_voice = "marin"
    token_ttl_seconds = 60
    max_token_ttl_seconds = 60

    [profiles.staff]
    instructions_mode = "client"

    [profiles.staff.live]            # GPT-Live: the POLICY_LIVE_* fields, by short name
    allowed_models = ["gpt-live-1.1"]
    default_model = "gpt-live-1.1"

    [profiles.free.budget]           # dollar budgets (`service.policy.budget`), not policy
    quota_usd_per_day = 2

With `AUTH_PROFILE_CLAIM` set (JWT), the claim's value names the profile.
Each profile is validated at start-up as a complete policy, like the env one.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from service.core.validation import problems
from service.policy.budget import Budget
from service.policy.model import Policy
from service.policy.phone import PhoneLine, load_lines

DEFAULT = "default"
"""The name under which the env policy is reported when no profile applies."""


@dataclass(frozen=True)
class Profiles:
    """The env policy plus named overrides, and who gets which."""

    base: Policy
    named: dict[str, Policy] = field(default_factory=dict)
    callers: dict[str, str] = field(default_factory=dict)
    default: str | None = None
    budgets: dict[str, Budget] = field(default_factory=dict)
    """Profiles' own dollar budgets, by profile name (`[profiles.NAME.budget]`)."""
    phone: dict[str, PhoneLine] = field(default_factory=dict)
    """Dialled numbers (E.164) and the line each is (`[phone."+1..."]`, `service.policy.phone`)."""

    @cached_property
    def digest(self) -> str:
        """A short hash of every policy and who gets which (`policy_hash`).

        On every audit line, in `/readyz` and `GET /v1/policy`, so an auditor can
        tell which policy decided a request after a deploy. Secret values
        (delegation, MCP credentials) are hashed with the rest, so changing one
        changes the hash; the hash reveals none of them.
        """
        document = {
            "policies": {name: policy.model_dump(mode="python") for name, policy in self.all()},
            "callers": self.callers,
            "default": self.default,
        }
        if self.phone:
            document["phone"] = {n: repr(line) for n, line in self.phone.items()}
        if self.budgets:
            document["budgets"] = {
                name: b.model_dump(mode="json") for name, b in self.budgets.items()
            }
        canonical = json.dumps(document, sort_keys=True, default=_revealed)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def all(self) -> list[tuple[str, Policy]]:
        """Every policy by name: the env policy (as `default`) and each profile."""
        return [(DEFAULT, self.base), *self.named.items()]

    def policy(self, name: str) -> Policy:
        """The policy of a profile by name (`default`: the env policy)."""
        return self.base if name == DEFAULT else self.named[name]

    def for_caller(self, identity: str, claim: str | None = None) -> tuple[str, Policy]:
        """The profile name and policy for a caller (its identity, and JWT claim if any)."""
        name = claim if claim in self.named else self.callers.get(identity)
        name = name or self.default
        if name is None:
            return DEFAULT, self.base
        return name, self.named[name]


def _revealed(value: object) -> object:
    """JSON for what a policy dump holds beyond JSON (secrets by value, tuples, models)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="python")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def _read(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml  # only for YAML profiles files

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"not valid YAML: {exc}") from None
    else:
        data = tomllib.loads(text)
    if not isinstance(data, dict):
        raise ValueError("the file must hold a mapping")
    return data


def load_profiles(base: Policy, path: Path | None) -> Profiles:
    """Read and validate the profiles file; errors say which profile and field."""
    if path is None:
        return Profiles(base)
    try:
        data = _read(path)
    except (OSError, tomllib.TOMLDecodeError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    unknown = set(data) - {"default", "callers", "profiles", "phone"}
    if unknown:
        raise ValueError(
            f"unknown keys {sorted(unknown)} (expected default, callers, profiles, phone)"
        )
    named: dict[str, Policy] = {}
    budgets: dict[str, Budget] = {}
    for name, table in (data.get("profiles") or {}).items():
        if not isinstance(table, dict):
            raise ValueError(f"profile '{name}' must be a table of policy fields")
        overrides = {key: value for key, value in table.items() if key != "budget"}
        if "budget" in table:
            budgets[name] = _budget(name, table["budget"])
        merged = {**base.model_dump(), **overrides}
        if isinstance(overrides.get("live"), dict):  # a [live] table overrides field by field
            merged["live"] = {**base.live.model_dump(), **overrides["live"]}
        try:
            named[name] = Policy.model_validate(merged)
        except ValidationError as exc:
            raise ValueError(f"profile '{name}': {problems(exc, whole='policy')}") from None
    callers = {str(k): str(v) for k, v in (data.get("callers") or {}).items()}
    default = data.get("default")
    missing = {p for p in [*callers.values(), default] if p is not None and p not in named}
    if missing:
        raise ValueError(f"refers to undefined profiles: {', '.join(sorted(missing))}")
    phone = load_lines(data.get("phone"), {DEFAULT, *named})
    return Profiles(base, named, callers, default, budgets, phone)


def _budget(profile: str, table: object) -> Budget:
    """A profile's `[budget]` table, validated; errors name the profile and field."""
    try:
        return Budget.model_validate(table)
    except ValidationError as exc:
        found = problems(exc, prefix="budget.", whole="table")
        raise ValueError(f"profile '{profile}': {found}") from None
