"""The one Settings class: every knob, read from the environment and `.env`.

Names are the contract with ops (documented in `.env.example` and the README).
Policy variables are `POLICY_<FIELD>` and land in the nested `Policy`, which
validates itself, so a contradictory configuration stops start-up with a
message naming the variable rather than failing at the first mint.

The OpenAI key is a `SecretStr` with no default; it can also come from a Docker
secret file named `openai_api_key` in `SECRETS_DIR` (default `/run/secrets`).
"""

from __future__ import annotations

import os
from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.policy import Policy


def available_cpus() -> int:
    """CPUs this process may run on (a container's quota, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def parse_pairs(value: object) -> object:
    """Read `a=b,c=d` from env as `{"a": "b", "c": "d"}`."""
    if isinstance(value, str):
        pairs = [item.split("=", 1) for item in value.split(",") if item.strip()]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError("expected name=value pairs separated by commas")
        return {name.strip(): target.strip() for name, target in pairs}
    return value


class Settings(BaseSettings):
    """Configuration of one process. Tests build it explicitly; nothing patches globals."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        validate_default=True,
    )

    openai_api_key: SecretStr | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    upstream_api_type: Literal["openai", "azure"] = "openai"
    upstream_model_map: Annotated[dict[str, str], NoDecode, BeforeValidator(parse_pairs)] = Field(
        default_factory=dict
    )
    upstream_emulator: bool = False
    upstream_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0
    upstream_max_retries: Annotated[int, Field(ge=0, le=5)] = 2
    upstream_max_connections: Annotated[int, Field(ge=1)] = 512

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    workers: Annotated[int, Field(ge=1)] = Field(default_factory=available_cpus)
    max_body_bytes: Annotated[int, Field(ge=1024)] = 65536

    log_format: Literal["json", "console"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    policy: Policy = Field(default_factory=Policy)

    @model_validator(mode="after")
    def _key_or_emulator(self) -> Self:
        """A real upstream needs a real key; only the emulator runs without one."""
        if not self.upstream_emulator:
            key = self.openai_api_key.get_secret_value() if self.openai_api_key else ""
            if not key.strip():
                raise ValueError(
                    "OPENAI_API_KEY is required (or set UPSTREAM_EMULATOR=true to run "
                    "against the built-in emulator)"
                )
        return self


def env_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable a validation error location refers to."""
    return "_".join(str(part) for part in loc if isinstance(part, str)).upper()


def describe(error: ValidationError) -> str:
    """A start-up error message that names each offending variable, never its secret value."""
    lines = []
    for item in error.errors(include_input=False, include_url=False):
        name = env_name(item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{name}: {message}" if name else message)
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Settings from env, `.env` and the Docker secrets directory (if it exists)."""
    secrets_dir = os.environ.get("SECRETS_DIR", "/run/secrets")
    return Settings(
        _secrets_dir=secrets_dir if os.path.isdir(secrets_dir) else None,
        **overrides,  # type: ignore[arg-type]
    )
