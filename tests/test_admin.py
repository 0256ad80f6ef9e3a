"""`/admin`: operators end a caller's calls and suspend callers, with ADMIN_API_KEYS only.

OpenAI's HTTP side is respx and the sideband is scripted (tests/sidebands.py);
the endings that reach other workers go through a real Redis shared by two apps.
"""

from __future__ import annotations

import httpx
import pytest
import respx

from service.api import create_app
from service.auth import new_api_key
from service.config import Settings
from tests.clocks import FakeClock
from tests.conftest import CALL_ID, SDP_OFFER, ClientFor, MakeSettings, serving
from tests.paths import REALTIME_CALLS
from tests.servers import redis_server
from tests.sidebands import ScriptedSideband
from tests.suite_logs import captured_logs
from tests.test_call_spend import ALICE_CALL, BOB_CALL, distinct_ids, done
from tests.test_call_supervision import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]
MINT = "/v1/realtime/client_secrets"
ALICE, ALICE_ENTRY = new_api_key("alice")
BOB, BOB_ENTRY = new_api_key("bob")
OPS, OPS_ENTRY = new_api_key("ops-on-call")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def admin_settings(make_settings: MakeSettings, **overrides: object) -> Settings:
    return make_settings(
        auth_mode="api_key",
        auth_api_keys=f"{ALICE_ENTRY},{BOB_ENTRY}",
        admin_api_keys=OPS_ENTRY,
        **overrides,
    )


async def mint(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.post(MINT, json={"session": {"type": "realtime"}}, headers=bearer(key))


async def create_call(client: httpx.AsyncClient, key: str) -> httpx.Response:
    headers = {"Content-Type": "application/sdp", **bearer(key)}
    return await client.post(REALTIME_CALLS, content=SDP_OFFER, headers=headers)


class TestAccess:
    """Who reaches `/admin`: operators with their own keys, nobody when none are set."""

    async def test_without_operator_keys_admin_is_an_unknown_route(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """Without ADMIN_API_KEYS every /admin URL gets the 404 of an unknown URL."""
        client = await client_for(make_settings(auth_mode="api_key", auth_api_keys=ALICE_ENTRY))
        unknown = await client.post("/no/such/route", headers=bearer(ALICE))
        for path in ("/admin/callers/alice/hangup", "/admin/callers/alice/suspend"):
            answer = await client.post(path, headers=bearer(ALICE), content=b"not json")
            assert answer.status_code == 404
            assert answer.json() == unknown.json()

    async def test_a_callers_key_does_not_open_admin(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """A caller's key, or none, is a 401 at /admin; the operator's key is served."""
        client = await client_for(admin_settings(make_settings))
        path = "/admin/callers/bob/hangup"
        assert (await client.post(path, headers=bearer(ALICE))).status_code == 401
        assert (await client.post(path)).status_code == 401
        served = await client.post(path, headers=bearer(OPS))
        assert served.status_code == 200
        assert served.json()["identity"] == "bob"

    def test_an_operator_key_that_is_a_callers_is_refused_at_start_up(
        self, make_settings: MakeSettings
    ) -> None:
        """The same hash in ADMIN_API_KEYS and AUTH_API_KEYS stops start-up, naming both."""
        shared = f"ops:{ALICE_ENTRY.split(':')[1]}"
        with pytest.raises(ValueError, match="ADMIN_API_KEYS and AUTH_API_KEYS share a key"):
            make_settings(auth_mode="api_key", auth_api_keys=ALICE_ENTRY, admin_api_keys=shared)


class TestSuspend:
    """A suspended caller's mints and calls are refused until the suspension ends or is lifted."""

    async def test_suspended_caller_gets_403_others_are_served(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """After a suspension, the caller's mint and call get 403 caller_suspended; Bob mints."""
        client = await client_for(admin_settings(make_settings))
        suspended = await client.post(
            "/admin/callers/alice/suspend", json={"seconds": 600}, headers=bearer(OPS)
        )
        assert suspended.status_code == 200
        for refused in (await mint(client, ALICE), await create_call(client, ALICE)):
            assert refused.status_code == 403
            error = refused.json()["error"]
            assert (error["type"], error["code"]) == ("permission_error", "caller_suspended")
            assert 0 < int(refused.headers["retry-after"]) <= 600
        assert (await mint(client, BOB)).status_code == 200

    async def test_a_suspension_ends_on_time_and_can_be_lifted(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """Past its seconds (on the service's clock) the caller mints again; a lift ends it
        early."""
        clock = FakeClock()
        transport = httpx.MockTransport(upstream.async_handler)
        app = create_app(admin_settings(make_settings), transport, ScriptedSideband(), clock)
        async with serving(app) as client:
            await client.post(
                "/admin/callers/alice/suspend", json={"seconds": 60}, headers=bearer(OPS)
            )
            clock.advance(59_000)
            assert (await mint(client, ALICE)).status_code == 403
            clock.advance(1_000)
            assert (await mint(client, ALICE)).status_code == 200
            await client.post(
                "/admin/callers/alice/suspend", json={"seconds": 60}, headers=bearer(OPS)
            )
            lifted = await client.delete("/admin/callers/alice/suspend", headers=bearer(OPS))
            assert lifted.json() == {"identity": "alice", "lifted": True}
            assert (await mint(client, ALICE)).status_code == 200

    @pytest.mark.parametrize("body", [b"{}", b'{"seconds": 0}', b'{"seconds": "x"}', b"[1"])
    async def test_a_bad_duration_is_a_400(
        self, client_for: ClientFor, make_settings: MakeSettings, body: bytes
    ) -> None:
        """A missing, zero, non-integer or unreadable `seconds` is a 400 in OpenAI's envelope."""
        client = await client_for(admin_settings(make_settings))
        answer = await client.post(
            "/admin/callers/alice/suspend", content=body, headers=bearer(OPS)
        )
        assert answer.status_code == 400
        assert answer.json()["error"]["type"] == "invalid_request_error"
        assert (await mint(client, ALICE)).status_code == 200

    async def test_a_large_body_is_a_413(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """A suspension body past its small limit is refused unread, 413 in OpenAI's envelope."""
        client = await client_for(admin_settings(make_settings))
        body = b'{"seconds": 60, "pad": "' + b"x" * 100_000 + b'"}'
        answer = await client.post(
            "/admin/callers/alice/suspend", content=body, headers=bearer(OPS)
        )
        assert answer.status_code == 413
        assert answer.json()["error"]["code"] == "request_too_large"
        assert (await mint(client, ALICE)).status_code == 200

    async def test_every_action_has_an_audit_line_naming_the_operator(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """Suspend, lift and hang-up each log one line with the operator, action and caller."""
        client = await client_for(admin_settings(make_settings))
        with captured_logs() as lines:
            await client.post(
                "/admin/callers/alice/suspend", json={"seconds": 5}, headers=bearer(OPS)
            )
            await client.delete("/admin/callers/alice/suspend", headers=bearer(OPS))
            await client.post("/admin/callers/alice/hangup", headers=bearer(OPS))
        actions = [
            line["event"]
            for line in lines
            if line.get("admin") == "ops-on-call" and line.get("identity") == "alice"
        ]
        assert actions == ["admin_caller_suspended", "admin_suspension_lifted", "admin_calls_ended"]


class TestEndCalls:
    """An operator's hang-up, or a suspension, ends the caller's live calls on every worker."""

    async def test_a_suspension_hangs_up_the_callers_live_call(
        self,
        client_for: ClientFor,
        make_settings: MakeSettings,
        sideband: ScriptedSideband,
        upstream: respx.MockRouter,
    ) -> None:
        """Alice's call on this worker is hung up at once when she is suspended."""
        client = await client_for(admin_settings(make_settings))
        assert (await create_call(client, ALICE)).status_code == 201
        await sideband.attached(CALL_ID)
        answer = await client.post(
            "/admin/callers/alice/suspend", json={"seconds": 60}, headers=bearer(OPS)
        )
        assert answer.json()["calls_ended_here"] == 1
        await sideband.until(lambda: upstream.routes["hangup"].called)
        assert upstream.routes["hangup"].calls.last.request.url.path == (
            f"/v1/realtime/calls/{CALL_ID}/hangup"
        )

    async def test_another_workers_calls_end_within_its_next_pass(
        self,
        make_settings: MakeSettings,
        sideband: ScriptedSideband,
        upstream: respx.MockRouter,
    ) -> None:
        """A hang-up asked of one app ends the call another app supervises (one Redis)."""
        with redis_server() as redis:
            settings = admin_settings(
                make_settings, redis_url=redis.url, redis_timeout_seconds=2.0, calls_lease_seconds=1
            )
            transport = httpx.MockTransport(upstream.async_handler)
            async with (
                serving(create_app(settings, transport, sideband)) as first,
                serving(create_app(settings, transport, ScriptedSideband())) as second,
            ):
                assert (await create_call(first, ALICE)).status_code == 201
                await sideband.attached(CALL_ID)
                ended = await second.post("/admin/callers/alice/hangup", headers=bearer(OPS))
                assert ended.json()["calls_ended_here"] == 0
                await sideband.until(lambda: upstream.routes["hangup"].called, timeout=15)

                async def forgotten() -> bool:
                    path = f"{REALTIME_CALLS}/{CALL_ID}"
                    return (await first.get(path, headers=bearer(ALICE))).status_code == 404

                await eventually(forgotten)

    async def test_a_call_started_after_the_hang_up_goes_on(
        self,
        make_settings: MakeSettings,
        sideband: ScriptedSideband,
        upstream: respx.MockRouter,
    ) -> None:
        """An ending covers the calls started before it: the keeper pass that ends those
        leaves the caller's newer call alone."""
        ids = iter(["rtc_before_0123456789", "rtc_after_0123456789a"])

        def answer(request: httpx.Request) -> httpx.Response:
            headers = {"Location": f"/v1/realtime/calls/{next(ids)}"}
            return httpx.Response(201, content=b"v=0\r\n", headers=headers)

        upstream.routes["call"].side_effect = answer
        clock = FakeClock()
        with redis_server() as redis:
            settings = admin_settings(
                make_settings, redis_url=redis.url, redis_timeout_seconds=2.0, calls_lease_seconds=1
            )
            transport = httpx.MockTransport(upstream.async_handler)
            async with (
                serving(create_app(settings, transport, sideband, clock)) as first,
                serving(create_app(settings, transport, ScriptedSideband(), clock)) as second,
            ):
                assert (await create_call(first, ALICE)).status_code == 201
                clock.advance(1_000)
                await second.post("/admin/callers/alice/hangup", headers=bearer(OPS))
                clock.advance(1_000)
                assert (await create_call(first, ALICE)).status_code == 201
                await sideband.attached("rtc_after_0123456789a")
                await sideband.until(lambda: upstream.routes["hangup"].called, timeout=15)
                # The pass that ended the older call judged the newer one too.
                assert [call.request.url.path for call in upstream.routes["hangup"].calls] == [
                    "/v1/realtime/calls/rtc_before_0123456789/hangup"
                ]
                newer = await first.get(
                    f"{REALTIME_CALLS}/rtc_after_0123456789a", headers=bearer(ALICE)
                )
                assert newer.status_code == 200


class TestUsage:
    """`GET /admin/usage`: a day's spending by caller and profile, costliest first."""

    async def test_callers_and_profiles_are_sorted_by_cost(
        self,
        make_settings: MakeSettings,
        sideband: ScriptedSideband,
        upstream: respx.MockRouter,
    ) -> None:
        """Alice's two responses ($0.10808) rank above Bob's one ($0.05404); the deployment
        shows their sum; `limit` lists fewer, `callers_total` still counts both."""
        upstream.routes["call"].side_effect = distinct_ids(ALICE_CALL, BOB_CALL)
        settings = admin_settings(
            make_settings, quota_usd_per_day_total="100", calls_lease_seconds=1
        )
        transport = httpx.MockTransport(upstream.async_handler)
        async with serving(create_app(settings, transport, sideband)) as client:
            assert (await create_call(client, ALICE)).status_code == 201
            assert (await create_call(client, BOB)).status_code == 201
            await sideband.attached(ALICE_CALL)
            await sideband.attached(BOB_CALL)
            for call_id in (ALICE_CALL, ALICE_CALL, BOB_CALL):
                sideband.emit(call_id, done())

            async def reported() -> bool:
                answer = await client.get("/admin/usage", headers=bearer(OPS))
                return bool(answer.json()["usd"] == "0.162120")

            await eventually(reported)

            async def listed() -> bool:
                answer = await client.get("/admin/usage", headers=bearer(OPS))
                return bool(answer.json()["callers_total"] == 2)

            await eventually(listed)
            report = (await client.get("/admin/usage", headers=bearer(OPS))).json()
            assert [(c["identity"], c["usd"]) for c in report["callers"]] == [
                ("alice", "0.108080"),
                ("bob", "0.054040"),
            ]
            assert report["profiles"] == [{"profile": "default", "usd": "0.162120"}]
            assert report["limits"] == {"usd_per_day_total": "100"}
            one = (await client.get("/admin/usage?limit=1", headers=bearer(OPS))).json()
            assert [c["identity"] for c in one["callers"]] == ["alice"]
            assert one["callers_total"] == 2

    @pytest.mark.parametrize("query", ["day=2026-13-01", "day=yesterday", "limit=0", "limit=x"])
    async def test_a_bad_query_is_a_400(
        self, client_for: ClientFor, make_settings: MakeSettings, query: str
    ) -> None:
        """A day that is not a date, or a limit out of 1..1000, is a 400 naming it."""
        client = await client_for(admin_settings(make_settings))
        answer = await client.get(f"/admin/usage?{query}", headers=bearer(OPS))
        assert answer.status_code == 400
        assert answer.json()["error"]["param"] == query.split("=")[0]

    async def test_a_day_without_calls_reports_nothing(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """A day nobody called is zero, with no callers; a caller's key gets a 401."""
        client = await client_for(admin_settings(make_settings))
        report = (await client.get("/admin/usage?day=2020-01-01", headers=bearer(OPS))).json()
        assert (report["usd"], report["callers"], report["callers_total"]) == ("0.000000", [], 0)
        assert (await client.get("/admin/usage", headers=bearer(ALICE))).status_code == 401
