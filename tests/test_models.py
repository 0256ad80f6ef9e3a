"""Models by configuration: any name may be allowed; unknown and retiring ones are warned about."""

from __future__ import annotations

from datetime import date

import pytest

from service.api import create_app
from service.policy import Policy, model_warnings
from tests.conftest import ClientFor, MakeSettings, serving
from tests.paths import READYZ
from tests.suite_logs import captured_logs

pytestmark = pytest.mark.anyio


class TestModelWarnings:
    """The catalog of known models and OpenAI's announced shutdown dates."""

    def test_default_policy_has_no_warnings(self) -> None:
        """The default model list names no model with a shutdown date near."""
        assert model_warnings([("default", Policy())], date(2026, 11, 26)) == []

    def test_defaults_stay_quiet_past_every_announced_shutdown(self) -> None:
        """No default (realtime or transcription) model is one OpenAI has announced a date for."""
        assert model_warnings([("default", Policy())], date(2027, 3, 1)) == []

    def test_model_within_60_days_of_shutdown(self) -> None:
        """gpt-realtime, shut down on 2027-01-20, is warned about 55 days before."""
        policy = Policy(
            allowed_models="gpt-realtime,gpt-realtime-2", default_model="gpt-realtime-2"
        )
        [warning] = model_warnings([("default", policy)], date(2026, 11, 26))
        assert warning["model"] == "gpt-realtime"
        assert warning["reason"] == "shutdown"
        assert warning["setting"] == "POLICY_ALLOWED_MODELS"
        assert "shuts down in 55 days (2027-01-20" in warning["message"]

    def test_model_past_its_shutdown(self) -> None:
        """A model past its date is reported as shut down."""
        policy = Policy(allowed_models="gpt-realtime-mini", default_model="gpt-realtime-mini")
        warnings = model_warnings([("default", policy)], date(2027, 2, 1))
        [warning] = [item for item in warnings if item["model"] == "gpt-realtime-mini"]
        assert "was shut down" in warning["message"]

    def test_far_shutdown_is_not_warned(self) -> None:
        """More than 60 days ahead, a retiring model is not yet a warning."""
        policy = Policy(allowed_models="gpt-realtime", default_model="gpt-realtime")
        assert model_warnings([("default", policy)], date(2026, 10, 1)) == []

    def test_unknown_model_is_a_warning(self) -> None:
        """A name the service does not know is allowed, with a warning naming the variable."""
        policy = Policy(allowed_models="gpt-realtime-3", default_model="gpt-realtime-3")
        [warning] = model_warnings([("default", policy)], date(2026, 11, 26))
        assert warning["reason"] == "unknown"
        assert warning["model"] == "gpt-realtime-3"

    def test_profiles_are_named(self) -> None:
        """The same model in several profiles is one warning listing them."""
        policy = Policy(allowed_models="gpt-realtime-3", default_model="gpt-realtime-3")
        [warning] = model_warnings([("default", policy), ("free", policy)], date(2026, 11, 26))
        assert warning["profiles"] == ["default", "free"]


class TestStartupAndReadiness:
    """Warnings at start-up and in /readyz; neither stops the service."""

    async def test_unknown_model_starts_with_a_warning(self, make_settings: MakeSettings) -> None:
        """POLICY_ALLOWED_MODELS=gpt-realtime-3 starts and logs a model warning."""
        settings = make_settings(
            policy={"allowed_models": "gpt-realtime-3", "default_model": "gpt-realtime-3"}
        )
        with captured_logs() as logs:
            async with serving(create_app(settings)) as client:
                assert (await client.get(READYZ)).status_code == 200
        warned = [line for line in logs if line["event"] == "model_warning"]
        assert "gpt-realtime-3" in [line["model"] for line in warned]

    async def test_readyz_lists_model_warnings(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """/readyz stays ready and lists models to act on under `models`."""
        client = await client_for(
            make_settings(
                policy={"allowed_models": "gpt-realtime-3", "default_model": "gpt-realtime-3"}
            )
        )
        response = await client.get(READYZ)
        assert response.status_code == 200
        assert "gpt-realtime-3" in [item["model"] for item in response.json()["models"]]
