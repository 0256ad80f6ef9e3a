"""The price table: what each model costs, shipped as data and validated at start-up.

`prices.toml` next to this module is the shipped table; `PRICES_FILE` (same
format) replaces entries by model name and adds new ones. An entry is
replaced whole, never merged field by field: a price half from OpenAI's page
and half from a contract would be true to neither. Each entry says when
(`as_of`) and where (`source`) its prices were read, so ops can check them::

    [models."gpt-realtime-2"]
    as_of = 2026-12-04
    source = "https://developers.openai.com/api/docs/models/gpt-realtime-2"
    tokens = { text_input = 4, cached_text_input = 0.4, text_output = 24, ... }

    [models."gpt-live-1.1"]
    as_of = 2026-12-04
    source = "https://developers.openai.com/api/docs/models/gpt-live-1.1"
    live = { active_per_minute = 0.05, standby_per_minute = 0.02, start_seconds = 15 }

    [models."gpt-realtime-whisper"]
    as_of = 2026-12-04
    source = "https://developers.openai.com/api/docs/models/gpt-realtime-whisper"
    duration = { per_minute = 0.017 }

Prices are US dollars, read as exact decimals (never floats). Token prices
are per million tokens, as OpenAI publishes them, with at most six decimals,
so one token costs a whole number of pico-dollars. Duration prices are per
minute, as OpenAI publishes them: GPT-Live is billed by the second, but
$0.05 a minute is no finite decimal per second, so the per-minute figure is
the exact one to keep.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from service.core.validation import problems

SHIPPED = Path(__file__).with_name("prices.toml")
"""The table shipped with the service."""

SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")
"""A dated snapshot's suffix (`gpt-realtime-2025-08-28`): priced as its base model if unlisted."""

PerMillionTokens = Annotated[Decimal, Field(ge=0, decimal_places=6)]
"""Dollars per million tokens: at most six decimals, so a token is whole pico-dollars."""
PerMinute = Annotated[Decimal, Field(ge=0)]
"""Dollars per minute of billed duration."""


class _Strict(BaseModel):
    """Unknown keys are refused: a misspelt price must not silently read as absent."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class TokenPrices(_Strict):
    """Realtime and token-billed transcription models, dollars per million tokens.

    An absent cached price is the uncached price of the same kind; an absent
    price of another kind is the highest price in its direction (input or
    output), so a budget may count high but never low.
    """

    text_input: PerMillionTokens | None = None
    cached_text_input: PerMillionTokens | None = None
    text_output: PerMillionTokens | None = None
    audio_input: PerMillionTokens | None = None
    cached_audio_input: PerMillionTokens | None = None
    audio_output: PerMillionTokens | None = None
    image_input: PerMillionTokens | None = None
    cached_image_input: PerMillionTokens | None = None

    @model_validator(mode="after")
    def _both_directions(self) -> Self:
        """Tokens flow in and out of every model: each direction needs a price."""
        if self._highest(self.text_input, self.audio_input, self.image_input) is None:
            raise ValueError("needs at least one input price (text_input, audio_input, ...)")
        if self._highest(self.text_output, self.audio_output) is None:
            raise ValueError("needs at least one output price (text_output or audio_output)")
        return self

    @staticmethod
    def _highest(*prices: Decimal | None) -> Decimal | None:
        given = [p for p in prices if p is not None]
        return max(given) if given else None

    @cached_property
    def pico_per_token(self) -> PicoPerToken:
        """Each token kind's price in whole pico-dollars per token, fallbacks applied.

        Computed once per entry: costing a response is then integer arithmetic only.
        """
        # Never None once validated (`_both_directions`); `or` only narrows the type.
        top_in = self._highest(self.text_input, self.audio_input, self.image_input) or Decimal(0)
        top_out = self._highest(self.text_output, self.audio_output) or Decimal(0)
        text_in = self.text_input if self.text_input is not None else top_in
        audio_in = self.audio_input if self.audio_input is not None else top_in
        image_in = self.image_input if self.image_input is not None else top_in

        def pico(price: Decimal | None, fallback: Decimal) -> int:
            # $1 per million tokens is 1e-6 $ = 1e6 pico-dollars per token.
            return int((price if price is not None else fallback) * 1_000_000)

        return PicoPerToken(
            text_input=pico(text_in, top_in),
            cached_text_input=pico(self.cached_text_input, text_in),
            text_output=pico(self.text_output, top_out),
            audio_input=pico(audio_in, top_in),
            cached_audio_input=pico(self.cached_audio_input, audio_in),
            audio_output=pico(self.audio_output, top_out),
            image_input=pico(image_in, top_in),
            cached_image_input=pico(self.cached_image_input, image_in),
            other_input=pico(top_in, top_in),
            other_output=pico(top_out, top_out),
        )


@dataclass(frozen=True, slots=True)
class PicoPerToken:
    """Whole pico-dollars per token of each kind (`TokenPrices.pico_per_token`).

    `other_input` and `other_output` price the tokens a usage object counts
    in its total but attributes to no kind: the highest price in their direction.
    """

    text_input: int
    cached_text_input: int
    text_output: int
    audio_input: int
    cached_audio_input: int
    audio_output: int
    image_input: int
    cached_image_input: int
    other_input: int
    other_output: int


class DurationPrice(_Strict):
    """Transcription and translation billed by audio duration."""

    per_minute: PerMinute


class LivePrices(_Strict):
    """GPT-Live sessions: billed by the second, active and standby at their own rates.

    `start_seconds` is what creating a WebRTC session bills at the active rate
    while it initializes; OpenAI credits it against the session's duration, so
    it is a floor on the billed duration, not an addition to it. An absent
    standby rate is the active rate.
    """

    active_per_minute: PerMinute
    standby_per_minute: PerMinute | None = None
    start_seconds: Annotated[int, Field(ge=0, le=3600)] = 15

    @cached_property
    def ratios(self) -> tuple[int, int, int, int]:
        """Dollars per minute active and standby as exact ratios (numerator, denominator
        of each), standby's fallback applied: computed once, for every usage report."""
        standby = self.standby_per_minute
        active = self.active_per_minute.as_integer_ratio()
        paused = standby.as_integer_ratio() if standby is not None else active
        return (*active, *paused)


class ModelPrice(_Strict):
    """One model's entry: its prices by how it is billed, and where they come from."""

    as_of: date
    """The day the prices were read from `source`."""
    source: Annotated[str, Field(min_length=1)]
    """The page (or contract) the prices were taken from."""
    tokens: TokenPrices | None = None
    duration: DurationPrice | None = None
    live: LivePrices | None = None

    @model_validator(mode="after")
    def _has_a_price(self) -> Self:
        """An entry without any price would make its model look priced at zero."""
        if self.tokens is None and self.duration is None and self.live is None:
            raise ValueError("needs at least one of tokens, duration or live")
        return self


@dataclass(frozen=True)
class PriceTable:
    """Prices by model name; a dated snapshot falls back to its base model's entry."""

    models: dict[str, ModelPrice] = field(default_factory=dict)

    def price(self, model: str) -> ModelPrice | None:
        """The entry for `model`, else for its base name without a date suffix, else None."""
        entry = self.models.get(model)
        if entry is None and SNAPSHOT.search(model):
            entry = self.models.get(SNAPSHOT.sub("", model))
        return entry

    def entry_name(self, model: str) -> str | None:
        """The name of the entry that prices `model` (itself, or its undated base name)."""
        if model in self.models:
            return model
        base = SNAPSHOT.sub("", model) if SNAPSHOT.search(model) else None
        return base if base is not None and base in self.models else None

    def unpriced(self, models: list[str]) -> list[str]:
        """The names in `models` (in order, once each) that have no entry."""
        return [m for m in dict.fromkeys(models) if self.price(m) is None]


def load_prices(path: Path | None = None) -> PriceTable:
    """The shipped table, with `path`'s entries replacing or adding to it.

    Raises ValueError naming the file and the entry (`models."name".field`)
    at fault, never a price: the caller reports it at start-up.
    """
    models = _read_table(SHIPPED)
    if path is not None:
        models.update(_read_table(path))
    return PriceTable(models)


def _read_table(path: Path) -> dict[str, ModelPrice]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    unknown = set(data) - {"models"}
    if unknown:
        raise ValueError(f'{path}: unknown keys {sorted(unknown)} (expected [models."name"])')
    entries = data.get("models", {})
    if not isinstance(entries, dict):
        raise ValueError(f"{path}: `models` must be a table of entries")
    return {name: _entry(path, name, value) for name, value in entries.items()}


def _entry(path: Path, name: str, value: Any) -> ModelPrice:
    try:
        return ModelPrice.model_validate(value)
    except ValidationError as exc:
        raise ValueError(f'{path}: models."{name}": {problems(exc, whole="entry")}') from None
