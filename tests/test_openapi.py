"""/openapi.json and /docs describe both endpoints, hold no secret, and survive schemathesis."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

import httpx
import pytest

from service.auth import new_api_key
from tests.conftest import API_KEY, SERVER_INSTRUCTIONS, ClientFor
from tests.paths import CLIENT_SECRETS, SESSIONS
from tests.servers import ServiceProcess, log_file

pytestmark = pytest.mark.anyio


class TestDocument:
    """The OpenAPI document describes the endpoints from the validating models."""

    async def test_mint_endpoints_are_documented_with_models(
        self, client: httpx.AsyncClient
    ) -> None:
        """Both endpoints have request and response schemas and examples."""
        document = (await client.get("/openapi.json")).json()
        sessions = document["paths"][SESSIONS]["post"]
        secrets = document["paths"][CLIENT_SECRETS]["post"]
        assert sessions["requestBody"]["content"]["application/json"]["example"]["voice"]
        assert secrets["requestBody"]["content"]["application/json"]["example"]["session"]
        schemas = document["components"]["schemas"]
        for name in (
            "SessionRequest",
            "ClientSecretRequest",
            "SessionCreated",
            "ClientSecretCreated",
            "ErrorResponse",
        ):
            assert name in schemas, name
        speed = schemas["SessionRequest"]["properties"]["speed"]["anyOf"][0]
        assert (speed["minimum"], speed["maximum"]) == (0.25, 1.5)
        assert sessions["responses"]["403"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"
        }

    async def test_no_secret_in_the_document(
        self, client_for: ClientFor, make_settings: Any
    ) -> None:
        """Neither the API key nor the server's instructions appear in the document."""
        client = await client_for(make_settings(policy={"instructions": SERVER_INSTRUCTIONS}))
        text = (await client.get("/openapi.json")).text
        assert API_KEY not in text
        assert SERVER_INSTRUCTIONS not in text

    async def test_docs_page_is_served(self, client: httpx.AsyncClient) -> None:
        """/docs renders the interactive documentation."""
        response = await client.get("/docs")
        assert response.status_code == 200
        assert "openapi.json" in response.text


class TestSchemathesis:
    """Requests generated from the document get answers the document describes."""

    def test_no_server_errors(self) -> None:
        """schemathesis, every operation, every check: statuses, bodies and headers conform."""
        binary = shutil.which("schemathesis", path=os.path.dirname(sys.executable))
        assert binary, "schemathesis is a dev dependency"
        key, entry = new_api_key("fuzz")
        service = ServiceProcess(
            {
                "AUTH_MODE": "api_key",
                "AUTH_API_KEYS": entry,
                "UPSTREAM_EMULATOR": "true",
                "WORKERS": "1",
                "LOG_LEVEL": "WARNING",
                "RATE_LIMIT_DRY_RUN_PER_IDENTITY": "off",  # schemathesis sends ~1000 requests
            }
        )
        try:
            service.wait_ready()
            output = log_file("schemathesis")
            result = subprocess.run(
                [
                    binary,
                    "run",
                    f"{service.url}/openapi.json",
                    "--checks",
                    "all",
                    "--max-examples",
                    "40",
                    "--header",
                    f"Authorization: Bearer {key}",
                    "--generation-deterministic",
                ],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            output.write_text(result.stdout + result.stderr)
            assert result.returncode == 0, result.stdout[-4000:]
            assert "No issues found" in result.stdout
        finally:
            assert service.stop() == 0
