"""What one usage report costs, exactly, from the usage OpenAI sends on the sideband.

The rounding rule, stated once: costs are whole pico-dollars (1e-12 $).
A token cost is exact (token prices have at most six decimals per million
tokens), so the costs of a call's responses add up to exactly the cost of
their summed usage. A duration cost (transcription by the second, GPT-Live)
is rounded half up to the pico-dollar once per usage object. Micro-dollars,
the unit of budgets and display, are a pico-dollar total rounded half up
once, at the end (`Cost.micro_dollars`): never round before adding.

Usage objects are read defensively, field by field, as OpenAI documents them
(openai SDK 3.57: `RealtimeResponseUsage`, the `usage` of
`ConversationItemInputAudioTranscriptionCompletedEvent`, Live's
`SessionUsage`): a count that is not a non-negative integer (a bool, a
string, a negative number) counts as absent, and an absent object costs nothing.
Tokens a total counts but no detail attributes are priced at the highest
price of their direction, so a budget may count high but never low.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from service.billing.prices import ModelPrice

PICO_PER_MICRO = 1_000_000
PICO_PER_DOLLAR = 10**12


@dataclass(frozen=True, slots=True, order=True)
class Cost:
    """An amount in whole pico-dollars; add these, and round only the total."""

    pico_dollars: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.pico_dollars + other.pico_dollars)

    @property
    def micro_dollars(self) -> int:
        """The amount in whole micro-dollars, rounded half up."""
        return (self.pico_dollars + PICO_PER_MICRO // 2) // PICO_PER_MICRO


def response_cost(usage: Any, price: ModelPrice) -> Cost | None:
    """The cost of one `response.done`'s `response.usage`; None if `price` has no token prices.

    Cached tokens are a subset of the input tokens of their kind
    (`input_token_details.cached_tokens_details`); cached tokens not split
    by kind are billed as uncached.
    """
    if price.tokens is None:
        return None
    rate = price.tokens.pico_per_token
    usage = _mapping(usage)
    details, out = (
        _mapping(usage.get("input_token_details")),
        _mapping(usage.get("output_token_details")),
    )
    cached = _mapping(details.get("cached_tokens_details"))
    text, audio, image = (
        _count(details, k) for k in ("text_tokens", "audio_tokens", "image_tokens")
    )
    c_text, c_audio, c_image = (
        _count(cached, k) for k in ("text_tokens", "audio_tokens", "image_tokens")
    )
    text_out, audio_out = _count(out, "text_tokens"), _count(out, "audio_tokens")
    other_in = max(0, _count(usage, "input_tokens") - text - audio - image)
    other_out = max(0, _count(usage, "output_tokens") - text_out - audio_out)
    return Cost(
        max(0, text - c_text) * rate.text_input
        + min(text, c_text) * rate.cached_text_input
        + max(0, audio - c_audio) * rate.audio_input
        + min(audio, c_audio) * rate.cached_audio_input
        + max(0, image - c_image) * rate.image_input
        + min(image, c_image) * rate.cached_image_input
        + other_in * rate.other_input
        + text_out * rate.text_output
        + audio_out * rate.audio_output
        + other_out * rate.other_output
    )


def transcription_cost(usage: Any, price: ModelPrice) -> Cost | None:
    """The cost of a `conversation.item.input_audio_transcription.completed`'s `usage`.

    `type: "tokens"` is priced by the entry's token prices (the transcript is
    text output), `type: "duration"` by its per-minute price; None when the
    entry has no price for the kind reported, or the kind is unknown.
    """
    usage = _mapping(usage)
    kind = usage.get("type")
    if kind == "duration":
        if price.duration is None:
            return None
        seconds, scale = _seconds(usage, "seconds") or (0, 1)
        dollars, minutes = price.duration.per_minute.as_integer_ratio()
        return Cost(_round_half_up(seconds * dollars * PICO_PER_DOLLAR, scale * minutes * 60))
    if kind == "tokens":
        if price.tokens is None:
            return None
        rate = price.tokens.pico_per_token
        details = _mapping(usage.get("input_token_details"))
        text, audio = _count(details, "text_tokens"), _count(details, "audio_tokens")
        other_in = max(0, _count(usage, "input_tokens") - text - audio)
        return Cost(
            text * rate.text_input
            + audio * rate.audio_input
            + other_in * rate.other_input
            + _count(usage, "output_tokens") * rate.text_output
        )
    return None


def live_cost(usage: Any, price: ModelPrice, *, webrtc: bool) -> Cost | None:
    """The cost of a GPT-Live session from its latest cumulative usage; None without Live prices.

    Pass the latest `session.usage.updated` or `session.closed` `usage` (it
    is cumulative: never add two), or None before any. `paused_seconds` are
    billed at the standby rate, the rest of `seconds` (or `active_seconds`, if
    more) at the active rate. A WebRTC session is billed at least `start_seconds` at the active
    rate: what its creation charged, which OpenAI credits against the
    duration (so it is a floor, not an addition).

    Integer arithmetic on the decimals the JSON carried: this runs for every
    report of every live session (400 a second at 2,000 sessions), where
    `Fraction`s cost several times as much for the same exact result.
    """
    live = price.live
    if live is None:
        return None
    usage = _mapping(usage)
    active_n, active_d = _seconds(usage, "active_seconds") or (0, 1)
    paused_n, paused_d = _seconds(usage, "paused_seconds") or (0, 1)
    total_n, total_d = _seconds(usage, "seconds") or (0, 1)
    # One denominator for the three (each divides a power of ten): exact.
    scale = math.lcm(active_d, paused_d, total_d)
    active = active_n * (scale // active_d)
    paused = paused_n * (scale // paused_d)
    billed = max(active, total_n * (scale // total_d) - paused)
    if webrtc:
        billed = max(billed, live.start_seconds * scale - paused)
    active_rate, active_per, standby_rate, standby_per = live.ratios
    dollars_minutes = billed * active_rate * standby_per + paused * standby_rate * active_per
    per = scale * active_per * standby_per * 60
    return Cost(_round_half_up(dollars_minutes * PICO_PER_DOLLAR, per))


def _round_half_up(numerator: int, denominator: int) -> int:
    """`numerator / denominator` (both non-negative) rounded half up to an integer."""
    return (2 * numerator + denominator) // (2 * denominator)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(data: dict[str, Any], key: str) -> int:
    """A token count: a non-negative int, else 0 (bools are ints in Python, not in JSON)."""
    value = data.get(key)
    return value if type(value) is int and value >= 0 else 0


def _seconds(data: dict[str, Any], key: str) -> tuple[int, int] | None:
    """A non-negative finite number of seconds, exactly as the JSON wrote it (numerator,
    denominator), else None."""
    value = data.get(key)
    if type(value) is int and value >= 0:
        return value, 1
    if type(value) is float and math.isfinite(value) and value >= 0:
        # The decimal the JSON carried, not the binary float (`repr` is its shortest form).
        return Decimal(repr(value)).as_integer_ratio()
    return None
