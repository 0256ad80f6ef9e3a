"""Variables that look like settings but are not: misspelt names, caught at start-up.

pydantic-settings ignores a variable it does not know, so `POLCY_ALLOWED_VOICES`
or `RATE_LIMT_PER_IP` would leave the default in force without a word. Any
variable with one of the service's prefixes, or with a prefix one letter off
and close to a real name, that `Settings` does not read is reported with the
nearest name it does read. Only names are ever reported: a value may be a
secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher, get_close_matches
from functools import cache
from pathlib import Path

from dotenv import dotenv_values
from pydantic import AliasChoices
from pydantic.fields import FieldInfo

from service.config.settings import Settings
from service.policy import Policy
from service.policy.live import LivePolicy

SERVICE_PREFIXES = (
    "POLICY_",
    "AUTH_",
    "ADMIN_",
    "CALLS_",
    "QUOTA_",
    "RATE_LIMIT_",
    "UPSTREAM_",
    "REDIS_",
    "CORS_",
    "LOG_",
    "METRICS_",
    "DEMO_",
)
"""Prefixes that only the service's own settings use."""
PREFIX_LIKENESS = 0.8
"""How alike a name's leading words and a prefix must be to count as a misspelt prefix
(`POLCY_` for `POLICY_`, `METRIC_` for `METRICS_`; not `CORE_` for `CORS_`)."""
NAME_LIKENESS = 0.6
"""difflib's default: how alike a name and a setting must be to suggest the setting."""
SERVICE_LINK = re.compile(
    r"[A-Z0-9_]+_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT_\d+_(TCP|UDP|SCTP)(_[A-Z]+)?)"
)
"""What Kubernetes (and Docker links) set for every Service in the namespace: a Service
named `redis` or `auth` gives `REDIS_SERVICE_HOST`, `AUTH_PORT_80_TCP_ADDR`, ..."""
LINK_ADDRESS = re.compile(r"(tcp|udp|sctp)://")
"""The value of such a Service's `<NAME>_PORT` (`REDIS_PORT=tcp://10.0.0.7:6379`)."""


@dataclass(frozen=True, slots=True)
class UnknownVariable:
    """A variable no setting reads, and the setting it was probably meant to be."""

    name: str
    suggestion: str | None

    def __str__(self) -> str:
        hint = f"; did you mean `{self.suggestion}`?" if self.suggestion else ""
        return f"{self.name} is not a setting of the service{hint}"


def _env_names(name: str, field: FieldInfo) -> list[str]:
    """The variables a field reads: its name, or its alias(es)."""
    alias = field.validation_alias or field.alias
    if isinstance(alias, str):
        return [alias.upper()]
    if isinstance(alias, AliasChoices):
        return [choice.upper() for choice in alias.choices if isinstance(choice, str)]
    return [name.upper()]


@cache
def known_names() -> frozenset[str]:
    """Every variable `Settings` reads, nested `POLICY_<FIELD>` and `POLICY_LIVE_<FIELD>` too.

    `env_nested_delimiter="_"` with one split maps `POLICY_X` to the policy's
    field `x`, and the policy folds `live_x` into its `live` table.
    """
    names = {
        env
        for name, field in Settings.model_fields.items()
        if name != "policy"
        for env in _env_names(name, field)
    }
    names |= {f"POLICY_{name.upper()}" for name in Policy.model_fields if name != "live"}
    names |= {f"POLICY_LIVE_{name.upper()}" for name in LivePolicy.model_fields}
    return frozenset(names)


def _looks_like_ours(name: str) -> bool:
    """A service prefix, or leading words within a letter or two of one."""
    if name.startswith(SERVICE_PREFIXES):
        return True
    words = name.split("_")
    for prefix in SERVICE_PREFIXES:
        stem = prefix.rstrip("_")
        head = "_".join(words[: stem.count("_") + 1])
        if len(words) > stem.count("_") + 1 and (
            SequenceMatcher(None, head, stem).ratio() >= PREFIX_LIKENESS
        ):
            return True
    return False


def suggestion(name: str) -> str | None:
    """The setting `name` is closest to, if any is close."""
    matches = get_close_matches(name.upper(), known_names(), n=1, cutoff=NAME_LIKENESS)
    return matches[0] if matches else None


def unknown_variables(names: Iterable[str]) -> list[UnknownVariable]:
    """The names that look like settings and are not, each with its nearest setting.

    A name with a service prefix is always reported; one whose prefix is only
    close to a service prefix is reported when it is also close to a setting,
    so that other software's variables do not trip it.
    """
    known = known_names()
    found: dict[str, UnknownVariable] = {}
    for raw in names:
        name = raw.upper()
        if name in known or name in found or not _looks_like_ours(name):
            continue
        near = suggestion(name)
        if near is not None or name.startswith(SERVICE_PREFIXES):
            found[name] = UnknownVariable(raw, near)
    return sorted(found.values(), key=lambda unknown: unknown.name)


def configured_names(
    environ: Mapping[str, str] | None = None, env_file: Path | None = None
) -> list[str]:
    """The names `Settings` would see (the environment's, `.env`'s), less service links.

    Values are read only to tell a Service's `<NAME>_PORT=tcp://...` from a
    setting; none is kept or returned.
    """
    environ = os.environ if environ is None else environ
    env_file = env_file or Path(str(Settings.model_config.get("env_file")))
    from_file = dotenv_values(env_file) if env_file.is_file() else {}
    return [
        name
        for name, value in [*environ.items(), *from_file.items()]
        if not SERVICE_LINK.fullmatch(name.upper())
        and not (name.upper().endswith("_PORT") and LINK_ADDRESS.match(value or ""))
    ]
