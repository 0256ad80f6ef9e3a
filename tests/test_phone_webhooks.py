"""Phone calls: OpenAI's signed SIP webhooks, each call accepted once under its number's profile.

OpenAI's side is respx: the accept, reject and hang-up endpoints; the webhooks
are signed with the `standardwebhooks` package's own signer. A background
accept is waited on through the respx route's side effect (an event), never
slept for.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_type_hints

import httpx
import pytest
import redis.asyncio as aioredis
import respx
from openai.types.live.session_accept_params import Session as LiveAcceptSession
from standardwebhooks import Webhook

from service.api import create_app
from service.auth import new_api_key
from service.config import Settings
from service.policy import Policy, load_profiles
from service.policy import line_key as number_hash
from tests.clocks import FakeClock
from tests.conftest import BASE_URL, SERVER_INSTRUCTIONS, MakeSettings, serving
from tests.contract import assert_valid_ga_request
from tests.docs_examples import code_blocks
from tests.servers import ROOT, redis_server
from tests.sidebands import ScriptedSideband
from tests.suite_logs import captured_logs
from tests.test_call_supervision import eventually, metric

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

SECRET = "whsec_" + base64.b64encode(b"phone-webhook-secret-32-bytes!!!").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-secret-of-32-bytes-long!").decode()
WEBHOOKS = "/v1/webhooks/openai"
SUPPORT = "+15551234567"
LIVE_LINE = "+15559876543"
CALLER = "+14155550123"
ACCEPT_URL = rf"{BASE_URL}/(realtime/calls|live/sessions)/(?P<call_id>[A-Za-z0-9_-]+)/accept"
REJECT_URL = rf"{BASE_URL}/(realtime/calls|live/sessions)/(?P<call_id>[A-Za-z0-9_-]+)/reject"
PROFILES = f"""
[profiles.support]
allowed_models = ["gpt-realtime-2"]
default_model = "gpt-realtime-2"
allowed_voices = ["marin"]
default_voice = "marin"
instructions = "{SERVER_INSTRUCTIONS}"

[phone."{SUPPORT}"]
profile = "support"
kind = "realtime"
transfer_targets = ["tel:+15557654321"]

[phone."{LIVE_LINE}"]
profile = "support"
kind = "live"
"""
_ids = itertools.count(1)


class Accepts:
    """OpenAI's accept and reject endpoints: what they received, and events to wait on."""

    def __init__(self, upstream: respx.MockRouter) -> None:
        self.accepted: list[tuple[str, dict[str, Any]]] = []
        self.rejected: list[tuple[str, dict[str, Any]]] = []
        self.changed = asyncio.Condition()
        upstream.post(url__regex=ACCEPT_URL, name="accept").mock(side_effect=self._accept)
        upstream.post(url__regex=REJECT_URL, name="reject").mock(side_effect=self._reject)

    async def _accept(self, request: httpx.Request, call_id: str) -> httpx.Response:
        async with self.changed:
            self.accepted.append((request.url.path, json.loads(request.content)))
            self.changed.notify_all()
        return httpx.Response(200)

    async def _reject(self, request: httpx.Request, call_id: str) -> httpx.Response:
        async with self.changed:
            self.rejected.append((request.url.path, json.loads(request.content)))
            self.changed.notify_all()
        return httpx.Response(200)

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait (no polling) until `condition` holds; only a hang guard bounds it."""
        async with asyncio.timeout(10), self.changed:
            await self.changed.wait_for(condition)

    def paths(self) -> list[str]:
        return [path for path, _ in self.accepted]


@pytest.fixture(name="accepts")
def fixture_accepts(upstream: respx.MockRouter) -> Accepts:
    """OpenAI's phone-call endpoints, recorded."""
    return Accepts(upstream)


@pytest.fixture(name="phone_settings")
def fixture_phone_settings(make_settings: MakeSettings, tmp_path: Path) -> Callable[..., Settings]:
    """Settings with the webhook secret and the numbers table."""
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(PROFILES)

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "openai_webhook_secret": SECRET,
            "policy_profiles_file": profiles,
        }
        return make_settings(**{**values, **overrides})

    return make


def incoming(
    to: str = SUPPORT, kind: str = "realtime", call_id: str | None = None, caller: str = CALLER
) -> dict[str, Any]:
    """The event OpenAI sends for a pending SIP call (the SDK's webhook types)."""
    headers = [
        {"name": "From", "value": f'"Ann" <sip:{caller}@trunk.example.com>;tag=1'},
        {"name": "To", "value": f"<sip:{to}@sip.api.openai.com>"},
        {"name": "Call-ID", "value": "abc@trunk"},
    ]
    n = next(_ids)
    if kind == "realtime":
        data: dict[str, Any] = {"call_id": call_id or f"rtc_phone_{n}", "sip_headers": headers}
        return {
            "id": f"evt_{n}",
            "object": "event",
            "created_at": 1,
            "type": "realtime.call.incoming",
            "data": data,
        }
    data = {"session_id": call_id or f"live_phone_{n}", "type": "sip", "sip_headers": headers}
    return {
        "id": f"evt_{n}",
        "object": "event",
        "created_at": 1,
        "type": "live.transport.incoming",
        "data": data,
    }


def signed(
    event: dict[str, Any],
    *,
    secret: str = SECRET,
    webhook_id: str | None = None,
    age: timedelta = timedelta(0),
) -> tuple[bytes, dict[str, str]]:
    """The body and Standard Webhooks headers, signed by the package's own signer."""
    body = json.dumps(event).encode()
    wid = webhook_id or f"wh_{next(_ids)}"
    when = datetime.now(UTC) - age
    headers = {
        "webhook-id": wid,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(wid, when, body),
        "content-type": "application/json",
    }
    return body, headers


async def deliver(
    client: httpx.AsyncClient, event: dict[str, Any], **signing: Any
) -> httpx.Response:
    body, headers = signed(event, **signing)
    return await client.post(WEBHOOKS, content=body, headers=headers)


@asynccontextmanager
async def phone_app(
    settings: Settings,
    upstream: respx.MockRouter,
    sideband: ScriptedSideband,
    clock: FakeClock | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.MockTransport(upstream.async_handler)
    app = (
        create_app(settings, transport, sideband)
        if clock is None
        else create_app(settings, transport, sideband, clock)
    )
    async with serving(app) as client:
        yield client


async def settled(client: httpx.AsyncClient, accepts: Accepts) -> None:
    """Deliver a valid webhook for a sentinel call and wait for its accept: any accept the
    deliveries before it scheduled has run by then (one worker, one task queue)."""
    event = incoming(call_id="rtc_sentinel")
    assert (await deliver(client, event)).status_code == 200
    await accepts.until(lambda: any("rtc_sentinel" in p for p in accepts.paths()))


class TestSignature:
    """Standard Webhooks verification: only OpenAI's signed, fresh deliveries do anything."""

    async def test_valid_signature_accepts_the_call(
        self,
        phone_settings: Callable[..., Settings],
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
        accepts: Accepts,
    ) -> None:
        """A correctly signed `realtime.call.incoming` is answered 200 and the call accepted."""
        async with phone_app(phone_settings(), upstream, sideband) as client:
            answer = await deliver(client, incoming(call_id="rtc_valid"))
            assert answer.status_code == 200
            await accepts.until(lambda: bool(accepts.accepted))
            assert accepts.paths() == ["/v1/realtime/calls/rtc_valid/accept"]

    @pytest.mark.parametrize(
        "tamper",
        [
            "wrong_secret",
            "body_changed",
            "six_minutes_old",
            "no_signature",
            "no_id",
            "no_timestamp",
        ],
    )
    async def test_bad_delivery_is_refused_and_accepts_nothing(
        self,
        tamper: str,
        phone_settings: Callable[..., Settings],
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
        accepts: Accepts,
    ) -> None:
        """Wrong secret, changed body, stale timestamp, missing headers: 401, no accept."""
        event = incoming(call_id="rtc_forged")
        signing: dict[str, Any] = {}
        if tamper == "wrong_secret":
            signing["secret"] = OTHER_SECRET
        if tamper == "six_minutes_old":
            signing["age"] = timedelta(minutes=6)
        body, headers = signed(event, **signing)
        if tamper == "body_changed":
            body = body.replace(b"rtc_forged", b"rtc_forgex")
        missing = {
            "no_signature": "webhook-signature",
            "no_id": "webhook-id",
            "no_timestamp": "webhook-timestamp",
        }
        if tamper in missing:
            del headers[missing[tamper]]
        async with phone_app(phone_settings(), upstream, sideband) as client:
            answer = await client.post(WEBHOOKS, content=body, headers=headers)
            assert answer.status_code == 401
            assert answer.json()["error"]["code"] == "invalid_signature"
            await settled(client, accepts)
        assert accepts.paths() == ["/v1/realtime/calls/rtc_sentinel/accept"]

    async def test_unknown_event_type_is_400(
        self,
        phone_settings: Callable[..., Settings],
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
    ) -> None:
        """A signed event of a type the service does not handle is a 400 in OpenAI's envelope."""
        event = {"id": "evt_x", "type": "response.completed", "created_at": 1, "data": {"id": "r"}}
        async with phone_app(phone_settings(), upstream, sideband) as client:
            answer = await deliver(client, event)
        assert answer.status_code == 400
        assert answer.json()["error"]["param"] == "type"

    async def test_without_secret_the_route_is_unknown(
        self, make_settings: MakeSettings, upstream: respx.MockRouter, sideband: ScriptedSideband
    ) -> None:
        """No OPENAI_WEBHOOK_SECRET: the URL is the 404 of any unknown one."""
        async with phone_app(make_settings(), upstream, sideband) as client:
            answer = await deliver(client, incoming())
            unknown = await client.post("/v1/webhooks/nothing", content=b"{}")
        assert answer.status_code == 404
        assert answer.json() == unknown.json()

    async def test_oversized_body_is_413(
        self,
        phone_settings: Callable[..., Settings],
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
    ) -> None:
        """A body past the cap is refused before it is verified or read further."""
        event = incoming()
        event["data"]["sip_headers"].append({"name": "X-Pad", "value": "x" * 70_000})
        async with phone_app(phone_settings(), upstream, sideband) as client:
            answer = await deliver(client, event)
        assert answer.status_code == 413


class TestOnce:
    """Each delivery is handled once, and each call accepted once."""

    async def test_replayed_id_is_200_and_accepts_once(
        self,
        phone_settings: Callable[..., Settings],
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
        accepts: Accepts,
    ) -> None:
        """A redelivery (same webhook-id, fresh signature) gets 200 and no second accept."""
        event = incoming(call_id="rtc_once")
        with captured_logs() as lines:
            async with phone_app(phone_settings(), upstream, sideband) as client:
                first = await deliver(client, event, webhook_id="wh_same")
                again = await deliver(client, event, webhook_id="wh_same")
                await settled(client, accepts)
        assert (first.status_code, again.status_code) == (200, 200)
        requests = [line for line in lines if line.get("endpoint") == "webhooks_openai"]
        assert [r["outcome"] for r in requests[:2]] == ["answering", "redelivery"]
        assert accepts.paths().count("/v1/realtime/calls/rtc_once/accept") == 1

    async def test_same_call_under_a_new_id_accepts_once(
        self,
        phone_settings: Callable[..., Settings],
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
        accepts: Accepts,
    ) -> None:
        """Two webhooks naming one call id: the store's claim lets one accept through."""
        async with phone_app(phone_settings(), upstream, sideband) as client:
            await deliver(client, incoming(call_id="rtc_twice"))
            await deliver(client, incoming(call_id="rtc_twice"))
            await settled(client, accepts)
        assert accepts.paths().count("/v1/realtime/calls/rtc_twice/accept") == 1

    @pytest.mark.parametrize(
        ("number", "accepted"),
        [(SUPPORT, "realtime/calls/rtc_pair"), (LIVE_LINE, "live/sessions/live_pair")],
    )
    async def test_both_webhooks_of_a_call_accept_the_line_s_kind(
        self,
        number: str,
        accepted: str,
        phone_settings: Callable[..., Settings],
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
        accepts: Accepts,
    ) -> None:
        """A call raising the Realtime and the Live webhook is accepted once, as its line's kind."""
        async with phone_app(phone_settings(), upstream, sideband) as client:
            realtime = await deliver(client, incoming(number, "realtime", "rtc_pair"))
            live = await deliver(client, incoming(number, "live", "live_pair"))
            await settled(client, accepts)
        assert (realtime.status_code, live.status_code) == (200, 200)
        assert [p for p in accepts.paths() if "pair" in p] == [f"/v1/{accepted}/accept"]

    async def test_two_apps_on_one_redis_accept_once(
        self,
        phone_settings: Callable[..., Settings],
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
        accepts: Accepts,
    ) -> None:
        """The same delivery reaching two replicas at once is accepted by one."""
        with redis_server() as redis:
            settings = phone_settings(redis_url=redis.url, redis_timeout_seconds=2.0)
            body, headers = signed(incoming(call_id="rtc_raced"), webhook_id="wh_raced")
            async with (
                phone_app(settings, upstream, sideband) as one,
                phone_app(settings, upstream, sideband) as two,
            ):
                answers = await asyncio.gather(
                    one.post(WEBHOOKS, content=body, headers=headers),
                    two.post(WEBHOOKS, content=body, headers=headers),
                )
                await settled(one, accepts)
                await settled(two, accepts)
        assert [a.status_code for a in answers] == [200, 200]
        assert accepts.paths().count("/v1/realtime/calls/rtc_raced/accept") == 1


class TestNumbers:
    """The dialled number picks the profile; an unknown or full one is rejected."""

    async def test_unknown_number_is_rejected_603(
        self,
        phone_settings: Callable[..., Settings],
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
        accepts: Accepts,
    ) -> None:
        """PHONE_UNKNOWN_NUMBER=reject: a number no line lists is declined with SIP 603."""
        async with phone_app(phone_settings(), upstream, sideband) as client:
            await deliver(client, incoming("+15550000000", call_id="rtc_nobody"))
            await accepts.until(lambda: bool(accepts.rejected))
        assert accepts.rejected == [("/v1/realtime/calls/rtc_nobody/reject", {"status_code": 603})]
        assert not accepts.accepted

    async def test_unknown_number_may_go_to_a_profile(
        self,
        phone_settings: Callable[..., Settings],
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
        accepts: Accepts,
    ) -> None:
        """PHONE_UNKNOWN_NUMBER=support: the unlisted number is answered with that profile."""
        settings = phone_settings(phone_unknown_number="support")
        async with phone_app(settings, upstream, sideband) as client:
            await deliver(client, incoming("+15550000000", call_id="rtc_default"))
            await accepts.until(lambda: bool(accepts.accepted))
        assert accepts.accepted[0][1]["instructions"] == SERVER_INSTRUCTIONS

    async def test_full_line_is_rejected_486(
        self,
        phone_settings: Callable[..., Settings],
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
        accepts: Accepts,
    ) -> None:
        """PHONE_MAX_CONCURRENT_PER_NUMBER=1: a second live call to the number gets 486."""
        settings = phone_settings(phone_max_concurrent_per_number=1)
        async with phone_app(settings, upstream, sideband) as client:
            await deliver(client, incoming(call_id="rtc_first", caller="+14155550001"))
            await accepts.until(lambda: bool(accepts.accepted))
            await deliver(client, incoming(call_id="rtc_second", caller="+14155550002"))
            await accepts.until(lambda: bool(accepts.rejected))
        assert accepts.rejected == [("/v1/realtime/calls/rtc_second/reject", {"status_code": 486})]

    async def test_ended_call_frees_its_line(
        self,
        phone_settings: Callable[..., Settings],
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
        accepts: Accepts,
    ) -> None:
        """PHONE_MAX_CONCURRENT_PER_NUMBER=1: once the first call hangs up, the next is taken."""
        line = f"rtp:line:{number_hash(SUPPORT)}"
        with redis_server() as redis:
            settings = phone_settings(
                phone_max_concurrent_per_number=1, redis_url=redis.url, redis_timeout_seconds=2.0
            )
            async with (
                aioredis.Redis.from_url(redis.url) as store,
                phone_app(settings, upstream, sideband) as client,
            ):
                await deliver(client, incoming(call_id="rtc_before"))
                await sideband.attached("rtc_before")
                assert await store.zcard(line) == 1
                sideband.close("rtc_before", "ended")

                async def freed() -> bool:
                    return bool(await store.zcard(line) == 0)

                await eventually(freed)
                await deliver(client, incoming(call_id="rtc_after"))
                await accepts.until(lambda: len(accepts.accepted) == 2 or bool(accepts.rejected))
        assert not accepts.rejected
        assert accepts.paths()[1] == "/v1/realtime/calls/rtc_after/accept"

    async def test_spent_caller_limit_rejects_with_the_configured_status(
        self,
        phone_settings: Callable[..., Settings],
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
        accepts: Accepts,
    ) -> None:
        """A caller's limit refusing the call: PHONE_BUDGET_REJECT_STATUS (603 here)."""
        settings = phone_settings(
            calls_max_concurrent_per_identity=1, phone_budget_reject_status=603
        )
        async with phone_app(settings, upstream, sideband) as client:
            await deliver(client, incoming(call_id="rtc_mine"))
            await accepts.until(lambda: bool(accepts.accepted))
            await deliver(client, incoming(call_id="rtc_mine_too"))
            await accepts.until(lambda: bool(accepts.rejected))
        assert accepts.rejected == [
            ("/v1/realtime/calls/rtc_mine_too/reject", {"status_code": 603})
        ]

    def test_line_to_a_missing_profile_fails_at_start(
        self, make_settings: MakeSettings, tmp_path: Path
    ) -> None:
        """A number whose profile does not exist is refused at start-up, naming it."""
        profiles = tmp_path / "p.toml"
        profiles.write_text(f'[phone."{SUPPORT}"]\nprofile = "nope"\n')
        with pytest.raises(ValueError, match=r'phone\."\+15551234567"\.profile'):
            make_settings(policy_profiles_file=profiles)

    def test_number_not_e164_fails_at_start(
        self, make_settings: MakeSettings, tmp_path: Path
    ) -> None:
        """A number that is not E.164 is refused at start-up."""
        profiles = tmp_path / "p.toml"
        profiles.write_text('[phone."5551234567"]\nprofile = "default"\n')
        with pytest.raises(ValueError, match=r"E\.164"):
            make_settings(policy_profiles_file=profiles)

    def test_reject_status_must_be_busy_or_decline(self, make_settings: MakeSettings) -> None:
        """PHONE_BUDGET_REJECT_STATUS other than 486 or 603 is refused at start-up."""
        with pytest.raises(ValueError, match="PHONE_BUDGET_REJECT_STATUS"):
            make_settings(phone_budget_reject_status=500)

    def test_unknown_number_profile_must_exist(self, make_settings: MakeSettings) -> None:
        """PHONE_UNKNOWN_NUMBER naming no profile is refused at start-up, naming the variable."""
        with pytest.raises(ValueError, match="PHONE_UNKNOWN_NUMBER"):
            make_settings(phone_unknown_number="nope")


class TestSession:
    """The accepted session is the profile's, and OpenAI's schema takes it."""

    async def test_realtime_accept_is_the_profile_s_policy(
        self,
        phone_settings: Callable[..., Settings],
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
        accepts: Accepts,
    ) -> None:
        """Model, voice and instructions are the profile's; the body is a valid accept."""
        async with phone_app(phone_settings(), upstream, sideband) as client:
            await deliver(client, incoming(call_id="rtc_policy"))
            await accepts.until(lambda: bool(accepts.accepted))
        body = accepts.accepted[0][1]
        assert_valid_ga_request(body, "RealtimeSessionCreateRequestGA")
        assert body == {
            "type": "realtime",
            "model": "gpt-realtime-2",
            "audio": {"output": {"voice": "marin"}},
            "instructions": SERVER_INSTRUCTIONS,
        }

    async def test_live_accept_takes_only_the_sdk_s_fields(
        self,
        phone_settings: Callable[..., Settings],
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
        accepts: Accepts,
    ) -> None:
        """GPT-Live's accept carries only `SessionAcceptParams.session` fields, `type: live`."""
        async with phone_app(phone_settings(), upstream, sideband) as client:
            await deliver(client, incoming(LIVE_LINE, "live", "live_policy"))
            await accepts.until(lambda: bool(accepts.accepted))
        path, body = accepts.accepted[0]
        assert path == "/v1/live/sessions/live_policy/accept"
        assert set(body) == {"session"}
        assert set(body["session"]) <= set(get_type_hints(LiveAcceptSession, include_extras=False))
        assert body["session"] == {
            "type": "live",
            "model": "gpt-live-1",
            "audio": {"output": {"voice": "marin"}},
            "safety_identifier": f"phone:{number_hash(CALLER)}",
        }

    async def test_caller_is_the_hash_of_from(
        self,
        phone_settings: Callable[..., Settings],
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
        accepts: Accepts,
    ) -> None:
        """The audit line names the caller by a hash of `From`, never a number."""
        with captured_logs() as lines:
            async with phone_app(phone_settings(), upstream, sideband) as client:
                await deliver(client, incoming(call_id="rtc_audit"))
                await accepts.until(lambda: bool(accepts.accepted))
                await settled(client, accepts)
        phone = [line for line in lines if line.get("event") == "phone_call"]
        assert phone[0]["endpoint"] == "phone"
        assert phone[0]["identity"] == f"phone:{number_hash(CALLER)}"
        assert phone[0]["number"] == number_hash(SUPPORT)
        text = json.dumps(lines)
        assert CALLER not in text
        assert SUPPORT not in text


class TestSupervision:
    """A phone call is supervised as a server-created one."""

    async def test_override_is_reverted(
        self,
        phone_settings: Callable[..., Settings],
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
        accepts: Accepts,
    ) -> None:
        """A voice changed on the sideband goes back to the profile's."""
        async with phone_app(phone_settings(), upstream, sideband) as client:
            await deliver(client, incoming(call_id="rtc_watch"))
            await sideband.attached("rtc_watch")
            await sideband.until(lambda: sideband.sent["rtc_watch"])
            sideband.sent["rtc_watch"].clear()
            changed = {
                "type": "realtime",
                "model": "gpt-realtime-2",
                "instructions": SERVER_INSTRUCTIONS,
                "audio": {"output": {"voice": "verse"}},
            }
            sideband.emit("rtc_watch", {"type": "session.updated", "session": changed})
            await sideband.until(lambda: sideband.sent["rtc_watch"])
            assert sideband.sent["rtc_watch"][0]["session"]["audio"] == {
                "output": {"voice": "marin"}
            }

    async def test_hung_up_at_calls_max_seconds(
        self,
        phone_settings: Callable[..., Settings],
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
        accepts: Accepts,
    ) -> None:
        """Past CALLS_MAX_SECONDS by the service's clock, the phone call is hung up."""
        clock = FakeClock()
        hung = upstream.routes["hangup"]
        async with phone_app(
            phone_settings(calls_max_seconds=60), upstream, sideband, clock
        ) as client:
            await deliver(client, incoming(call_id="rtc_long"))
            await sideband.attached("rtc_long")
            assert not hung.called
            clock.advance(61_000)
            sideband.emit("rtc_long", {"type": "input_audio_buffer.speech_started"})
            await sideband.until(lambda: hung.called)
        assert hung.calls.last.request.url.path == "/v1/realtime/calls/rtc_long/hangup"

    async def test_handed_over_call_is_adopted_and_keeps_its_line(
        self,
        phone_settings: Callable[..., Settings],
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
        accepts: Accepts,
    ) -> None:
        """A worker stopping mid-call hands the phone call over; another adopts it, and the
        number's line stays taken until the call ends."""
        line = f"rtp:line:{number_hash(SUPPORT)}"
        with redis_server() as redis:

            def settings(lease_seconds: float) -> Settings:
                return phone_settings(
                    redis_url=redis.url,
                    redis_timeout_seconds=2.0,
                    calls_lease_seconds=lease_seconds,
                    phone_max_concurrent_per_number=1,
                )

            async with (
                aioredis.Redis.from_url(redis.url) as store,
                phone_app(settings(1), upstream, sideband),
            ):
                async with phone_app(settings(300), upstream, sideband) as first:
                    await deliver(first, incoming(call_id="rtc_adopted"))
                    await sideband.attached("rtc_adopted")
                await sideband.attached("rtc_adopted", count=2)
                assert await store.zcard(line) == 1
                raw = await store.get("rtp:call:realtime:rtc_adopted")
                assert raw is not None
                record = json.loads(raw)
                assert record["line"] == number_hash(SUPPORT)


class TestSafety:
    """`safety_identifier.blocked` suspends the caller OpenAI names."""

    async def test_blocked_caller_is_suspended(
        self,
        phone_settings: Callable[..., Settings],
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
    ) -> None:
        """The identifier is suspended for SAFETY_SUSPEND_SECONDS: its mints get 403."""
        event = {
            "id": "evt_blocked",
            "type": "safety_identifier.blocked",
            "created_at": 1,
            "data": {"safety_identifier": "anonymous", "safety_category": "cyber"},
        }
        settings = phone_settings(auth_mode="none")
        async with phone_app(settings, upstream, sideband) as client:
            before = await client.post("/v1/realtime/client_secrets", json={})
            answer = await deliver(client, event)
            after = await client.post("/v1/realtime/client_secrets", json={})
        assert before.status_code == 200
        assert answer.status_code == 200
        assert after.status_code == 403
        assert after.json()["error"]["code"] == "caller_suspended"

    async def test_blocked_caller_s_phone_call_is_hung_up(
        self,
        phone_settings: Callable[..., Settings],
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
        accepts: Accepts,
    ) -> None:
        """A phone caller OpenAI blocks (by the identifier the service sent) is hung up."""
        blocked = {
            "id": "evt_blocked_phone",
            "type": "safety_identifier.blocked",
            "created_at": 1,
            "data": {"safety_identifier": f"phone:{number_hash(CALLER)}"},
        }
        async with phone_app(phone_settings(), upstream, sideband) as client:
            before = await metric(client, "rtp_safety_blocks_total")
            await deliver(client, incoming(call_id="rtc_blocked"))
            await sideband.attached("rtc_blocked")
            assert not upstream.routes["hangup"].called
            assert (await deliver(client, blocked)).status_code == 200
            await sideband.until(lambda: upstream.routes["hangup"].called)
            after = await metric(client, "rtp_safety_blocks_total")
        path = upstream.routes["hangup"].calls.last.request.url.path
        assert path == "/v1/realtime/calls/rtc_blocked/hangup"
        assert after == before + 1


class TestDocs:
    """docs/configuration.md's phone example is a profiles file the service starts with."""

    def test_phone_example_loads(self, tmp_path: Path) -> None:
        """The `[phone]` example loads: its number, profile, kind and transfer targets."""
        (block,) = [
            b
            for b in code_blocks(ROOT / "docs" / "configuration.md")
            if b.lang == "toml" and "[phone." in b.text
        ]
        path = tmp_path / "profiles.toml"
        path.write_text(block.text, encoding="utf-8")
        line = load_profiles(Policy(), path).phone["+15551234567"]
        assert (line.profile, line.kind) == ("support", "realtime")
        assert line.transfer_targets == ("tel:+15557654321", "sip:desk@pbx.example.com")


REFER_URL = rf"{BASE_URL}/(realtime/calls|live/sessions)/[A-Za-z0-9_-]+/refer"
OPS, OPS_ENTRY = new_api_key("ops-on-call")


class TestTransfer:
    """`POST /admin/calls/{id}/refer`: a phone call goes only where its number allows."""

    @pytest.mark.parametrize(
        ("target", "status"), [("tel:+15557654321", 200), ("tel:+19005550000", 403)]
    )
    async def test_refer_only_to_listed_targets(
        self,
        target: str,
        status: int,
        phone_settings: Callable[..., Settings],
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
        accepts: Accepts,
    ) -> None:
        """A listed target is referred upstream; any other is 403 and reaches nothing."""
        referred = upstream.post(url__regex=REFER_URL, name="refer")
        referred.mock(return_value=httpx.Response(200))
        settings = phone_settings(admin_api_keys=OPS_ENTRY)
        async with phone_app(settings, upstream, sideband) as client:
            await deliver(client, incoming(call_id="rtc_transfer"))
            await sideband.attached("rtc_transfer")
            answer = await client.post(
                "/admin/calls/rtc_transfer/refer",
                json={"target_uri": target},
                headers={"Authorization": f"Bearer {OPS}"},
            )
        assert answer.status_code == status
        if status == 200:
            assert json.loads(referred.calls.last.request.content) == {"target_uri": target}
            assert referred.calls.last.request.url.path == "/v1/realtime/calls/rtc_transfer/refer"
        else:
            assert not referred.called
