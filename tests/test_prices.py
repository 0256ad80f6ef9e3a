"""The price table (`service.billing.prices`) and the cost of usage (`service.billing.cost`).

Expected costs are worked out by hand in the comments: tokens times dollars
per million tokens is micro-dollars, so 1,000 tokens at $1.50 are 1,500 µ$.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from service.api import create_app
from service.billing import (
    Cost,
    ModelPrice,
    PriceTable,
    live_cost,
    load_prices,
    response_cost,
    transcription_cost,
)
from service.config import Settings, describe
from service.policy import Policy, allowed_models
from tests.conftest import MakeSettings, serving
from tests.paths import READYZ
from tests.suite_logs import captured_logs

ROOT = Path(__file__).resolve().parents[1]
PAGE = "https://example.test/prices"

TOKENS = ModelPrice.model_validate(
    {
        "as_of": "2026-12-04",
        "source": PAGE,
        "tokens": {
            "text_input": "1.5",
            "cached_text_input": "0.15",
            "text_output": "6",
            "audio_input": "12",
            "cached_audio_input": "0.35",
            "audio_output": "48",
            "image_input": "2.25",
            "cached_image_input": "0.225",
        },
    }
)
"""A model with a distinct price for every token kind, so each test isolates one."""
LIVE = ModelPrice.model_validate(
    {
        "as_of": "2026-12-04",
        "source": PAGE,
        "live": {"active_per_minute": "0.05", "standby_per_minute": "0.02", "start_seconds": 15},
    }
)
"""GPT-Live-1.1's published rates: $0.05 a minute active, $0.02 standby, 15 s at start."""


def duration_price(per_minute: str) -> ModelPrice:
    """An entry billed by audio duration at `per_minute` dollars."""
    return ModelPrice.model_validate(
        {"as_of": "2026-12-04", "source": PAGE, "duration": {"per_minute": per_minute}}
    )


def usage(
    text: int = 0,
    audio: int = 0,
    image: int = 0,
    cached: tuple[int, int, int] = (0, 0, 0),
    text_out: int = 0,
    audio_out: int = 0,
) -> dict[str, Any]:
    """A consistent `response.done` usage object, shaped as `RealtimeResponseUsage`."""
    c_text, c_audio, c_image = cached
    return {
        "input_tokens": text + audio + image,
        "output_tokens": text_out + audio_out,
        "total_tokens": text + audio + image + text_out + audio_out,
        "input_token_details": {
            "text_tokens": text,
            "audio_tokens": audio,
            "image_tokens": image,
            "cached_tokens": c_text + c_audio + c_image,
            "cached_tokens_details": {
                "text_tokens": c_text,
                "audio_tokens": c_audio,
                "image_tokens": c_image,
            },
        },
        "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
    }


def cost(value: Cost | None) -> Cost:
    """`value`, which the test expects to be priced."""
    assert value is not None
    return value


class TestResponseCost:
    """One `response.done` usage, each token kind against a hand-computed figure."""

    def test_text_input(self) -> None:
        """1,000 text input tokens at $1.50/M cost 1,500 µ$."""
        assert cost(response_cost(usage(text=1000), TOKENS)) == Cost(1_500_000_000)

    def test_cached_text_input(self) -> None:
        """Of 1,000 text tokens, 400 cached: 600 x 1.5 + 400 x 0.15 = 960 µ$."""
        got = cost(response_cost(usage(text=1000, cached=(400, 0, 0)), TOKENS))
        assert got.micro_dollars == 960

    def test_text_output(self) -> None:
        """250 text output tokens at $6/M cost 1,500 µ$."""
        assert cost(response_cost(usage(text_out=250), TOKENS)).micro_dollars == 1500

    def test_audio_input(self) -> None:
        """333 audio input tokens at $12/M cost 3,996 µ$."""
        assert cost(response_cost(usage(audio=333), TOKENS)).micro_dollars == 3996

    def test_cached_audio_input(self) -> None:
        """Of 500 audio tokens, 200 cached: 300 x 12 + 200 x 0.35 = 3,670 µ$."""
        got = cost(response_cost(usage(audio=500, cached=(0, 200, 0)), TOKENS))
        assert got.micro_dollars == 3670

    def test_audio_output(self) -> None:
        """77 audio output tokens at $48/M cost 3,696 µ$."""
        assert cost(response_cost(usage(audio_out=77), TOKENS)).micro_dollars == 3696

    def test_image_input(self) -> None:
        """100 image input tokens at $2.25/M cost 225 µ$."""
        assert cost(response_cost(usage(image=100), TOKENS)).micro_dollars == 225

    def test_cached_image_input(self) -> None:
        """Of 100 image tokens, 40 cached: 60 x 2.25 + 40 x 0.225 = 144 µ$."""
        got = cost(response_cost(usage(image=100, cached=(0, 0, 40)), TOKENS))
        assert got.micro_dollars == 144

    def test_every_kind_at_once_is_the_sum(self) -> None:
        """All kinds in one response: 960 + 3,670 + 144 + 1,500 + 3,696 = 9,970 µ$."""
        both = usage(1000, 500, 100, (400, 200, 40), text_out=250, audio_out=77)
        assert cost(response_cost(both, TOKENS)).micro_dollars == 9970

    def test_below_a_micro_dollar_is_kept_exact(self) -> None:
        """One cached text token is 0.15 µ$: kept as 150,000 pico-dollars, not rounded to 0."""
        got = cost(response_cost(usage(text=1, cached=(1, 0, 0)), TOKENS))
        assert got == Cost(150_000)

    def test_unattributed_input_is_priced_at_the_highest_input_rate(self) -> None:
        """10 input tokens without details cost 10 x $12/M (audio, the highest) = 120 µ$."""
        assert cost(response_cost({"input_tokens": 10}, TOKENS)).micro_dollars == 120

    def test_unattributed_output_is_priced_at_the_highest_output_rate(self) -> None:
        """10 output tokens without details cost 10 x $48/M (audio, the highest) = 480 µ$."""
        assert cost(response_cost({"output_tokens": 10}, TOKENS)).micro_dollars == 480

    def test_unsplit_cached_tokens_are_billed_uncached(self) -> None:
        """`cached_tokens` without its split by kind never lowers the cost."""
        unsplit = {
            "input_tokens": 1000,
            "input_token_details": {"text_tokens": 1000, "cached_tokens": 400},
        }
        assert cost(response_cost(unsplit, TOKENS)).micro_dollars == 1500

    @pytest.mark.parametrize("bad", [True, -5, "7", 7.0, None, [7]])
    def test_a_count_that_is_not_a_non_negative_int_counts_nothing(self, bad: object) -> None:
        """Bools, negatives, strings, floats and lists in a count are ignored."""
        reported = {"input_tokens": bad, "input_token_details": {"text_tokens": bad}}
        assert response_cost(reported, TOKENS) == Cost(0)

    @pytest.mark.parametrize("bad", [None, "usage", [1, 2], 42])
    def test_a_usage_that_is_not_an_object_costs_nothing(self, bad: object) -> None:
        """No usage object, no cost (rather than an exception in the supervisor)."""
        assert response_cost(bad, TOKENS) == Cost(0)

    def test_an_entry_without_token_prices_cannot_price_a_response(self) -> None:
        """A duration-only entry answers None: the caller knows the cost is unknown."""
        assert response_cost(usage(text=10), duration_price("0.006")) is None

    def test_absent_cached_price_is_the_uncached_one(self) -> None:
        """An entry with no cached audio price bills cached audio as uncached audio."""
        entry = ModelPrice.model_validate(
            {
                "as_of": "2026-12-04",
                "source": PAGE,
                "tokens": {"audio_input": 2.5, "text_output": 10},
            }
        )
        got = cost(response_cost(usage(audio=1000, cached=(0, 1000, 0)), entry))
        assert got.micro_dollars == 2500


class TestMicroDollars:
    """Pico-dollar totals round to micro-dollars half up, once."""

    def test_half_rounds_up(self) -> None:
        """500,000 pico-dollars (half a micro-dollar) is 1 µ$."""
        assert Cost(500_000).micro_dollars == 1

    def test_below_half_rounds_down(self) -> None:
        """499,999 pico-dollars is 0 µ$."""
        assert Cost(499_999).micro_dollars == 0

    def test_sums_round_once(self) -> None:
        """Four 0.15 µ$ tokens add to 0.6 µ$, which is 1 µ$; rounding each first would be 0."""
        one = cost(response_cost(usage(text=1, cached=(1, 0, 0)), TOKENS))
        assert (one + one + one + one).micro_dollars == 1


class TestTranscriptionCost:
    """`conversation.item.input_audio_transcription.completed` usage, by tokens or duration."""

    def test_by_tokens(self) -> None:
        """20 text + 100 audio in, 30 out: 20 x 1.5 + 100 x 12 + 30 x 6 = 1,410 µ$."""
        reported = {
            "type": "tokens",
            "input_tokens": 120,
            "output_tokens": 30,
            "total_tokens": 150,
            "input_token_details": {"text_tokens": 20, "audio_tokens": 100},
        }
        assert cost(transcription_cost(reported, TOKENS)).micro_dollars == 1410

    def test_by_duration(self) -> None:
        """2.3 s at $0.006 a minute (whisper-1) is 2.3 x 0.006 / 60 $ = 230 µ$, exactly."""
        reported = {"type": "duration", "seconds": 2.3}
        assert transcription_cost(reported, duration_price("0.006")) == Cost(230_000_000)

    def test_duration_rounds_half_up_to_the_pico_dollar(self) -> None:
        """At 0.001 pico-dollars a second, 500 s is 0.5 pico-dollars: 1; 499 s: 0."""
        price = duration_price("0.00000000000006")
        assert transcription_cost({"type": "duration", "seconds": 500}, price) == Cost(1)
        assert transcription_cost({"type": "duration", "seconds": 499}, price) == Cost(0)

    def test_duration_without_a_duration_price_is_unpriced(self) -> None:
        """A token-priced entry cannot price a duration: None."""
        assert transcription_cost({"type": "duration", "seconds": 3.0}, TOKENS) is None

    def test_an_unknown_usage_type_is_unpriced(self) -> None:
        """A usage `type` OpenAI has not documented is not guessed at."""
        assert transcription_cost({"type": "minutes", "seconds": 3.0}, TOKENS) is None

    @pytest.mark.parametrize("bad", [True, -1.0, "3", float("nan"), float("inf")])
    def test_bad_seconds_count_nothing(self, bad: object) -> None:
        """Seconds that are not a finite non-negative number cost nothing."""
        reported = {"type": "duration", "seconds": bad}
        assert transcription_cost(reported, duration_price("0.006")) == Cost(0)


class TestLiveCost:
    """GPT-Live by the second: active and standby rates, and the WebRTC start charge."""

    def test_active_and_standby(self) -> None:
        """420 s active and 180 s standby: 420 x 0.05/60 + 180 x 0.02/60 = $0.41."""
        reported = {"seconds": 600, "active_seconds": 420, "paused_seconds": 180}
        assert cost(live_cost(reported, LIVE, webrtc=True)).micro_dollars == 410_000

    def test_start_charge_before_any_usage(self) -> None:
        """A WebRTC session with no usage yet has cost its 15 s: 15 x 0.05/60 = $0.0125."""
        assert cost(live_cost(None, LIVE, webrtc=True)).micro_dollars == 12_500

    def test_start_charge_is_credited_not_added(self) -> None:
        """A 90 s session costs 90 s ($0.075), not 105 s: the 15 s are part of the 90."""
        reported = {"seconds": 90.0, "active_seconds": 90, "paused_seconds": 0}
        assert cost(live_cost(reported, LIVE, webrtc=True)).micro_dollars == 75_000

    def test_start_charge_floors_a_short_session_with_standby(self) -> None:
        """4 s active, 6 s standby: billed 9 s active + 6 s standby = $0.0075 + $0.002."""
        reported = {"seconds": 10, "active_seconds": 4, "paused_seconds": 6}
        assert cost(live_cost(reported, LIVE, webrtc=True)).micro_dollars == 9_500

    def test_no_start_charge_over_websocket(self) -> None:
        """A WebSocket session (no WebRTC creation) with no usage has cost nothing."""
        assert live_cost(None, LIVE, webrtc=False) == Cost(0)

    def test_seconds_without_breakdown_are_active(self) -> None:
        """61 s without a breakdown: 61 x 0.05/60 $ = 50,833,333,333.3 pico, rounded once."""
        assert live_cost({"seconds": 61.0}, LIVE, webrtc=False) == Cost(50_833_333_333)

    def test_absent_standby_rate_is_the_active_rate(self) -> None:
        """gpt-live-1's page lists one rate: 60 s active + 60 s paused cost 120 s = $0.10."""
        entry = ModelPrice.model_validate(
            {"as_of": "2026-12-04", "source": PAGE, "live": {"active_per_minute": "0.05"}}
        )
        reported = {"seconds": 120, "active_seconds": 60, "paused_seconds": 60}
        assert cost(live_cost(reported, entry, webrtc=True)).micro_dollars == 100_000

    def test_an_entry_without_live_prices_is_unpriced(self) -> None:
        """A token-priced entry cannot price a Live session: None."""
        assert live_cost({"seconds": 10}, TOKENS, webrtc=True) is None

    def test_seconds_are_the_decimals_the_json_carried(self) -> None:
        """3e-9 s as JSON writes it: 3e-9 x 0.05/60 $ = 2.5 pico, half up to 3 (the binary
        float nearest 3e-9 is a little less, which would round to 2)."""
        assert live_cost({"seconds": 3e-9}, LIVE, webrtc=False) == Cost(3)

    @given(
        st.floats(0, 10**6, allow_nan=False),
        st.floats(0, 10**6, allow_nan=False),
        st.floats(0, 10**6, allow_nan=False),
        st.booleans(),
    )
    def test_cost_is_the_exact_decimal_product_rounded_once(
        self, seconds: float, active: float, paused: float, webrtc: bool
    ) -> None:
        """Any report costs what exact arithmetic on its decimals says, rounded half up once."""
        reported = {"seconds": seconds, "active_seconds": active, "paused_seconds": paused}
        exact = {key: Fraction(repr(value)) for key, value in reported.items()}
        billed = max(exact["active_seconds"], exact["seconds"] - exact["paused_seconds"])
        if webrtc:
            billed = max(billed, 15 - exact["paused_seconds"])
        dollars = (billed * Fraction("0.05") + exact["paused_seconds"] * Fraction("0.02")) / 60
        expected = math.floor(dollars * 10**12 + Fraction(1, 2))
        assert live_cost(reported, LIVE, webrtc=webrtc) == Cost(expected)


counts = st.integers(min_value=0, max_value=200_000)


@st.composite
def responses(draw: st.DrawFn) -> dict[str, Any]:
    """A consistent usage object: cached within its kind, totals at least the details."""
    text, audio, image = draw(counts), draw(counts), draw(counts)
    cached = (
        draw(st.integers(0, text)),
        draw(st.integers(0, audio)),
        draw(st.integers(0, image)),
    )
    reported = usage(text, audio, image, cached, draw(counts), draw(counts))
    reported["input_tokens"] += draw(st.integers(0, 1000))  # unattributed tokens
    reported["output_tokens"] += draw(st.integers(0, 1000))
    return reported


def summed(usages: list[dict[str, Any]]) -> dict[str, Any]:
    """The field-by-field sum of usage objects: what the whole call used."""

    def add(values: list[Any]) -> Any:
        if isinstance(values[0], dict):
            return {key: add([v[key] for v in values]) for key in values[0]}
        return sum(values)

    return add(usages)  # type: ignore[no-any-return]


class TestCallTotal:
    """A call's cost is the sum of its responses' costs, exactly."""

    @given(st.lists(responses(), min_size=1, max_size=20))
    def test_sum_of_responses_is_the_cost_of_summed_usage(
        self, usages: list[dict[str, Any]]
    ) -> None:
        """Summing per-response costs equals costing the summed usage, to the pico-dollar."""
        parts = [cost(response_cost(u, TOKENS)) for u in usages]
        total = sum(parts, Cost(0))
        assert total == cost(response_cost(summed(usages), TOKENS))


def write(tmp_path: Path, text: str) -> Path:
    """A PRICES_FILE holding `text`."""
    path = tmp_path / "prices.toml"
    path.write_text(text)
    return path


class TestPriceTable:
    """The shipped table, PRICES_FILE, and snapshot names."""

    def test_shipped_table_prices_every_default_model(self) -> None:
        """Every model the default policy allows (Realtime, transcription, Live) has a price."""
        assert load_prices().unpriced(allowed_models([("default", Policy())])) == []

    def test_shipped_entries_say_where_they_come_from(self) -> None:
        """Each shipped entry names an OpenAI page and the day it was read."""
        table = load_prices()
        assert all(
            e.source.startswith("https://developers.openai.com/") for e in table.models.values()
        )
        assert all(e.as_of.year >= 2026 for e in table.models.values())

    def test_snapshot_resolves_to_its_base_entry(self) -> None:
        """`gpt-realtime-2-2026-05-01`, not listed, is priced as `gpt-realtime-2`."""
        table = load_prices()
        assert table.price("gpt-realtime-2-2026-05-01") is table.price("gpt-realtime-2")

    def test_a_listed_snapshot_keeps_its_own_entry(self, tmp_path: Path) -> None:
        """A snapshot with its own entry is not priced as its base model."""
        path = write(
            tmp_path,
            '[models."gpt-realtime-2-2026-05-01"]\nas_of = 2026-12-04\nsource = "x"\n'
            "duration = { per_minute = 1 }\n",
        )
        entry = load_prices(path).price("gpt-realtime-2-2026-05-01")
        assert entry is not None
        assert entry.duration is not None

    def test_a_name_that_is_not_a_snapshot_is_unpriced(self) -> None:
        """`gpt-realtime-2x` is no snapshot of `gpt-realtime-2`: no price."""
        assert load_prices().price("gpt-realtime-2x") is None

    def test_prices_file_replaces_an_entry_whole(self, tmp_path: Path) -> None:
        """A PRICES_FILE entry replaces the shipped one, not field by field."""
        path = write(
            tmp_path,
            '[models."gpt-realtime-2"]\nas_of = 2026-12-01\nsource = "contract 42"\n'
            "tokens = { text_input = 1, text_output = 2 }\n",
        )
        entry = load_prices(path).price("gpt-realtime-2")
        assert entry is not None
        assert entry.tokens is not None
        assert (entry.source, entry.tokens.text_input, entry.tokens.audio_input) == (
            "contract 42",
            Decimal(1),
            None,
        )

    def test_prices_file_adds_a_model_and_keeps_the_rest(self, tmp_path: Path) -> None:
        """A new model is added; the shipped entries stay."""
        path = write(
            tmp_path,
            '[models."my-model"]\nas_of = 2026-12-01\nsource = "x"\n'
            "duration = { per_minute = 0.01 }\n",
        )
        table = load_prices(path)
        assert table.unpriced(["my-model", "gpt-live-1.1"]) == []

    def test_unpriced_lists_each_model_once_in_order(self) -> None:
        """The start-up warning names each unpriced model once."""
        assert PriceTable().unpriced(["b", "a", "b"]) == ["b", "a"]


class TestInvalidPrices:
    """A bad PRICES_FILE stops start-up, naming the entry and the field."""

    @pytest.mark.parametrize(
        ("entry", "field"),
        [
            ("tokens = { text_input = -1, text_output = 2 }", "tokens.text_input"),
            ("tokens = { text_input = 0.0000001, text_output = 2 }", "tokens.text_input"),
            ("tokens = { text_inptu = 1, text_output = 2 }", "tokens.text_inptu"),
            ("tokens = { text_input = 1 }", "tokens"),
            ("tokens = { text_input = nan, text_output = 2 }", "tokens.text_input"),
            ("live = { standby_per_minute = 0.02 }", "live.active_per_minute"),
        ],
    )
    def test_bad_price_names_entry_and_field(self, tmp_path: Path, entry: str, field: str) -> None:
        """Negative, too precise, misspelt, one-sided, NaN or missing prices are refused."""
        path = write(tmp_path, f'[models."bad-model"]\nas_of = 2026-12-01\nsource = "x"\n{entry}\n')
        with pytest.raises(ValueError, match=r'models\."bad-model"') as raised:
            load_prices(path)
        assert field in str(raised.value)

    def test_an_entry_without_any_price_is_refused(self, tmp_path: Path) -> None:
        """An entry with a source but no prices would read as free."""
        path = write(tmp_path, '[models."free-model"]\nas_of = 2026-12-01\nsource = "x"\n')
        with pytest.raises(ValueError, match=r'models\."free-model".*at least one of'):
            load_prices(path)

    def test_an_entry_without_its_source_is_refused(self, tmp_path: Path) -> None:
        """Every entry says where its prices come from."""
        path = write(tmp_path, '[models."m"]\nas_of = 2026-12-01\nduration = { per_minute = 1 }\n')
        with pytest.raises(ValueError, match=r'models\."m": source'):
            load_prices(path)

    def test_unreadable_file_is_refused(self, tmp_path: Path) -> None:
        """A missing file stops start-up rather than pricing with the shipped table alone."""
        with pytest.raises(ValueError, match="cannot read"):
            load_prices(tmp_path / "missing.toml")

    def test_settings_report_it_under_prices_file(self, tmp_path: Path) -> None:
        """Settings refuse the file; the start-up message names PRICES_FILE and the entry."""
        path = write(tmp_path, '[models."bad-model"]\nas_of = 2026-12-01\nsource = "x"\n')
        with pytest.raises(ValidationError) as raised:
            Settings(_env_file=None, upstream_emulator=True, auth_mode="none", prices_file=path)
        message = describe(raised.value)
        assert "PRICES_FILE:" in message
        assert 'models."bad-model"' in message

    def test_service_exits_2_naming_the_entry(self, tmp_path: Path) -> None:
        """`python -m service` with a bad PRICES_FILE exits 2 naming the entry."""
        path = write(tmp_path, '[models."bad-model"]\nas_of = 2026-12-01\nsource = "x"\n')
        clean = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OPENAI_", "POLICY_", "UPSTREAM_", "AUTH_", "PRICES_"))
        }
        env = {
            **clean,
            "UPSTREAM_EMULATOR": "true",
            "AUTH_MODE": "none",
            "PRICES_FILE": str(path),
            "SECRETS_DIR": "/nonexistent",
        }
        result = subprocess.run(
            [sys.executable, "-m", "service"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            cwd=ROOT / "tests",
            check=False,
        )
        assert result.returncode == 2
        assert "PRICES_FILE:" in result.stderr
        assert 'models."bad-model"' in result.stderr


class TestStartupWarning:
    """Each allowed model without a price is named in a start-up log line."""

    @pytest.mark.anyio
    async def test_unpriced_allowed_model_is_logged(self, make_settings: MakeSettings) -> None:
        """POLICY_ALLOWED_MODELS=gpt-realtime-3 (no price) logs `model_unpriced` naming it."""
        settings = make_settings(
            policy={"allowed_models": "gpt-realtime-3", "default_model": "gpt-realtime-3"}
        )
        with captured_logs() as logs:
            async with serving(create_app(settings)) as client:
                assert (await client.get(READYZ)).status_code == 200
        unpriced = [line["model"] for line in logs if line["event"] == "model_unpriced"]
        assert unpriced == ["gpt-realtime-3"]

    @pytest.mark.anyio
    async def test_defaults_log_no_unpriced_model(self, make_settings: MakeSettings) -> None:
        """With the default policy every allowed model is priced: no `model_unpriced` line."""
        with captured_logs() as logs:
            async with serving(create_app(make_settings())) as client:
                assert (await client.get(READYZ)).status_code == 200
        assert [line for line in logs if line["event"] == "model_unpriced"] == []
