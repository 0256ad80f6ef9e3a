"""Dollar budgets as ops configure them: the variables, profiles' own values, and what start-up
and call creation make of them (metering itself: tests/test_call_spend.py)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from service.api import create_app
from service.core.env_values import micro_dollars
from tests.conftest import SDP_OFFER, ClientFor, MakeSettings, serving
from tests.paths import REALTIME_CALLS
from tests.suite_logs import captured_logs

MINT = "/v1/realtime/client_secrets"
READYZ = "/readyz"
UNPRICED = {"allowed_models": "gpt-realtime-2,gpt-realtime-3", "default_model": "gpt-realtime-2"}
"""gpt-realtime-3 is allowed (the policy knows no such model, and warns) but has no price."""


async def create_call(client: httpx.AsyncClient, model: str) -> httpx.Response:
    return await client.post(
        f"{REALTIME_CALLS}?model={model}",
        content=SDP_OFFER,
        headers={"Content-Type": "application/sdp"},
    )


class TestAmounts:
    """CALLS_MAX_USD, QUOTA_USD_PER_DAY and QUOTA_USD_PER_DAY_TOTAL read as exact dollars."""

    @pytest.mark.parametrize(
        ("text", "micro"), [("5", 5_000_000), ("0.25", 250_000), ("$1.50", 1_500_000)]
    )
    def test_amounts_read_exactly(self, make_settings: MakeSettings, text: str, micro: int) -> None:
        """A dollar amount becomes exactly that many micro-dollars, never a float."""
        settings = make_settings(quota_usd_per_day=text)
        assert settings.quota_usd_per_day is not None
        assert isinstance(settings.quota_usd_per_day, Decimal)
        assert micro_dollars(settings.quota_usd_per_day) == micro

    @pytest.mark.parametrize("text", ["0", "-1", "1.0000001", "five", "nan", "inf"])
    def test_a_bad_amount_is_refused_naming_the_variable(
        self, make_settings: MakeSettings, text: str
    ) -> None:
        """Zero, negative, sub-micro-dollar and non-numbers stop start-up, naming the variable."""
        with pytest.raises(ValueError, match="calls_max_usd"):
            make_settings(calls_max_usd=text)

    def test_off_means_no_budget(self, make_settings: MakeSettings) -> None:
        """`off` (or empty) is no budget, as for the rate limits."""
        assert make_settings(quota_usd_per_day_total="off").quota_usd_per_day_total is None


class TestProfileBudgets:
    """A profile's `[budget]` table gives its callers their own dollar limits."""

    def test_a_profile_overrides_the_env_and_the_rest_inherit(
        self, make_settings: MakeSettings, tmp_path: Path
    ) -> None:
        """`free` spends $2 a day and $0.50 a call; `staff`, without a table, gets the env's."""
        profiles = tmp_path / "profiles.toml"
        profiles.write_text(
            "[profiles.free.budget]\nquota_usd_per_day = 2\ncalls_max_usd = 0.5\n"
            "[profiles.staff]\ninstructions_mode = 'client'\n"
        )
        settings = make_settings(
            policy_profiles_file=profiles, quota_usd_per_day="10", calls_max_usd="1"
        )
        free, staff = settings.budget_for("free"), settings.budget_for("staff")
        assert (free.quota_usd_per_day, free.calls_max_usd) == (Decimal(2), Decimal("0.5"))
        assert (staff.quota_usd_per_day, staff.calls_max_usd) == (Decimal(10), Decimal(1))
        assert settings.budget_for("default") == staff

    def test_a_bad_profile_budget_names_the_profile_and_field(
        self, make_settings: MakeSettings, tmp_path: Path
    ) -> None:
        """A negative or unknown budget field stops start-up naming profile and field."""
        profiles = tmp_path / "profiles.toml"
        profiles.write_text("[profiles.free.budget]\nquota_usd_per_day = -2\n")
        with pytest.raises(ValueError, match=r"profile 'free': budget\.quota_usd_per_day"):
            make_settings(policy_profiles_file=profiles)
        profiles.write_text("[profiles.free.budget]\nquota_usd_per_week = 2\n")
        with pytest.raises(ValueError, match=r"profile 'free': budget\.quota_usd_per_week"):
            make_settings(policy_profiles_file=profiles)

    def test_budgets_change_the_policy_hash(
        self, make_settings: MakeSettings, tmp_path: Path
    ) -> None:
        """The hash on every audit line tells a $2 budget from a $3 one."""
        profiles = tmp_path / "profiles.toml"
        hashes = []
        for amount in (2, 3):
            profiles.write_text(f"[profiles.free.budget]\nquota_usd_per_day = {amount}\n")
            hashes.append(make_settings(policy_profiles_file=profiles).profiles.digest)
        assert hashes[0] != hashes[1]


@pytest.mark.anyio
class TestUnpricedModels:
    """Under a dollar budget a call's model must have a price: unmetered is never allowed."""

    async def test_an_unpriced_model_is_refused_naming_it(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """With QUOTA_USD_PER_DAY set, a call on gpt-realtime-3 (no price) is a 403 naming it."""
        client = await client_for(make_settings(policy=UNPRICED, quota_usd_per_day="5"))
        refused = await create_call(client, "gpt-realtime-3")
        assert refused.status_code == 403
        error = refused.json()["error"]
        assert (error["code"], error["param"]) == ("policy_violation", "model")
        assert "gpt-realtime-3" in error["message"]
        assert (await create_call(client, "gpt-realtime-2")).status_code == 201

    async def test_without_a_dollar_budget_an_unpriced_model_is_served(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """No dollar budget, nothing to meter against: the call is created."""
        client = await client_for(make_settings(policy=UNPRICED))
        assert (await create_call(client, "gpt-realtime-3")).status_code == 201

    async def test_the_deployment_ceiling_alone_requires_prices(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """QUOTA_USD_PER_DAY_TOTAL is a dollar budget too."""
        client = await client_for(make_settings(policy=UNPRICED, quota_usd_per_day_total="100"))
        assert (await create_call(client, "gpt-realtime-3")).status_code == 403


@pytest.mark.anyio
class TestClientSecrets:
    """Client secrets cannot be metered: ops are told, and can turn them off."""

    async def test_a_dollar_budget_with_client_secrets_on_warns_naming_the_switch(
        self, make_settings: MakeSettings
    ) -> None:
        """Start-up says dollar budgets do not see client-secret sessions, naming the setting."""
        with captured_logs() as logs:
            async with serving(create_app(make_settings(calls_max_usd="1"))) as client:
                assert (await client.get(READYZ)).status_code == 200
        (warning,) = [line for line in logs if line["event"] == "dollar_budget_unmetered"]
        assert "CLIENT_SECRETS_ENABLED=false" in warning["message"]

    async def test_client_secrets_off_leaves_only_calls(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """CLIENT_SECRETS_ENABLED=false: the mint endpoints are 404 and undocumented; calls work."""
        with captured_logs() as logs:
            client = await client_for(
                make_settings(calls_max_usd="1", client_secrets_enabled=False)
            )
            minted = await client.post(MINT, json={"session": {"type": "realtime"}})
            assert minted.status_code == 404
            assert minted.json()["error"]["code"] == "not_found"
            assert (await create_call(client, "gpt-realtime-2")).status_code == 201
            paths = (await client.get("/openapi.json")).json()["paths"]
        assert MINT not in paths
        assert REALTIME_CALLS in paths
        assert [line for line in logs if line["event"] == "dollar_budget_unmetered"] == []
