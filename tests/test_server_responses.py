"""Responses created by the server (`CALLS_RESPONSES=server`).

At creation turn detection's `create_response` is pinned false; the supervisor
answers each committed user turn with its own marked `response.create`, after
checking the caller's day, and cancels every `response.created` it did not
start (no mark, a forged or a used one). The default (`client`) changes nothing.

The sideband is scripted (tests/sidebands.py); OpenAI's HTTP side is respx.
tests/test_call_supervision_processes.py shows the same on an adopted call,
against the emulator and real service processes.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from service.api import create_app
from service.calls.fixed import CREATE_RESPONSE, overridden, restoring
from service.calls.records import CallRecord
from service.calls.turns import (
    MARK_TTL_MS,
    METADATA_KEY,
    Marks,
    mark,
    mark_of,
    new_tag,
    valid,
)
from service.core.clock import wall_ms
from tests.conftest import CALL_ID, SDP_ANSWER, ClientFor, MakeSettings, serving
from tests.paths import REALTIME_CALLS
from tests.servers import redis_server
from tests.sidebands import ScriptedSideband
from tests.suite_logs import captured_logs
from tests.test_call_rules import audits, echo, overrides_metric
from tests.test_call_supervision import attached, create, hangups, metric
from tests.test_realtime_calls_endpoint import multipart, sent_session

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]
OTHER_ID = "rtc_other_0123"
SPENT = 100
COMMITTED = {"type": "input_audio_buffer.committed", "item_id": "item_user_1"}
RESPONSE_USAGE = {
    "total_tokens": 1200,
    "input_tokens": 800,
    "output_tokens": 400,
    "input_token_details": {"text_tokens": 0, "audio_tokens": 800},
    "output_token_details": {"text_tokens": 0, "audio_tokens": 400},
}
"""On gpt-realtime-2: 800 audio in ($0.0256) and 400 audio out ($0.0256), $0.0512."""


def created(response_id: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"id": response_id, "object": "realtime.response"}
    if metadata is not None:
        response["metadata"] = metadata
    return {"type": "response.created", "response": response}


def cancels(sideband: ScriptedSideband) -> list[str]:
    return [
        event["response_id"]
        for event in sideband.sent[CALL_ID]
        if event["type"] == "response.cancel"
    ]


async def server_client(client_for: ClientFor, make_settings: MakeSettings, **more: Any) -> Any:
    return await client_for(make_settings(calls_responses="server", **more))


async def answer_turn(sideband: ScriptedSideband) -> dict[str, Any]:
    """Commit a user turn; the supervisor's `response.create` for it."""
    before = len(sideband.sent[CALL_ID])
    sideband.emit(CALL_ID, COMMITTED)
    await sideband.until(lambda: len(sideband.sent[CALL_ID]) > before)
    [sent] = sideband.sent[CALL_ID][before:]
    return sent


class TestMarks:
    """The marks: made with the call's tag, for that call, for a while, good once."""

    def test_a_mark_is_valid_for_its_call_only(self) -> None:
        tag = new_tag()
        value = mark(tag, CALL_ID, 1_000_000)
        assert valid(tag, CALL_ID, value, 1_000_000)
        assert not valid(tag, "rtc_other", value, 1_000_000)
        assert not valid(new_tag(), CALL_ID, value, 1_000_000)

    def test_a_mark_expires(self) -> None:
        tag = new_tag()
        value = mark(tag, CALL_ID, 1_000_000)
        assert valid(tag, CALL_ID, value, 1_000_000 + MARK_TTL_MS)
        assert not valid(tag, CALL_ID, value, 1_000_001 + MARK_TTL_MS)

    def test_a_forged_or_malformed_mark_is_refused(self) -> None:
        tag = new_tag()
        made, nonce, mac = mark(tag, CALL_ID, 1_000_000).split(".")
        for forged in (f"{made}.{nonce}.{'0' * 32}", f"{made}.other.{mac}", "x.y.z", "", "1.2"):
            assert not valid(tag, CALL_ID, forged, 1_000_000)

    def test_a_mark_is_good_once(self) -> None:
        tag, marks = new_tag(), Marks()
        response = {"metadata": {METADATA_KEY: mark(tag, CALL_ID, 5)}}
        assert marks.take(tag, CALL_ID, response, 5)
        assert not marks.take(tag, CALL_ID, response, 5)
        assert not marks.take(tag, CALL_ID, {"metadata": None}, 5)


class TestPin:
    """`create_response` as a fixed field (pure: `service.calls.fixed`)."""

    FIXED: dict[str, Any] = {CREATE_RESPONSE: False}  # noqa: RUF012

    def test_held_off_or_absent_turn_detection_is_not_an_override(self) -> None:
        for detection in ({"type": "server_vad", "create_response": False}, None):
            assert overridden(self.FIXED, {"audio": {"input": {"turn_detection": detection}}}) == []
        assert overridden(self.FIXED, {"type": "realtime"}) == []

    def test_on_or_left_to_the_default_is_an_override(self) -> None:
        for detection in (
            {"type": "semantic_vad", "create_response": True},
            {"type": "server_vad"},
        ):
            session = {"audio": {"input": {"turn_detection": detection}}}
            assert overridden(self.FIXED, session) == [CREATE_RESPONSE]

    def test_turn_detection_a_rule_restores_keeps_the_pin(self) -> None:
        """Another rule restores the whole turn detection: it goes up with the pin in it."""
        values = {**self.FIXED, "audio.input.turn_detection": {"type": "server_vad"}}
        update = restoring("realtime", values, ["audio.input.turn_detection"])
        restored = update["session"]["audio"]["input"]["turn_detection"]
        assert restored == {"type": "server_vad", "create_response": False}

    def test_restoring_the_pin_alone_with_detection_off_sends_nothing_of_it(self) -> None:
        update = restoring("realtime", self.FIXED, [CREATE_RESPONSE], None)
        assert update == {"type": "session.update", "session": {"type": "realtime"}}


class TestCreation:
    """The pin at creation, and the call's tag in its record (never shown)."""

    async def test_default_turn_detection_is_made_explicit_and_pinned(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """A call without turn detection (the API's server_vad) goes up with it explicit,
        `create_response: false`; the decision is shown."""
        client = await server_client(client_for, make_settings)
        answer = await create(client)
        assert answer.status_code == 201
        detection = sent_session(upstream)["audio"]["input"]["turn_detection"]
        assert detection == {"type": "server_vad", "create_response": False}
        decisions = answer.headers["X-Policy-Decisions"]
        assert "audio.input.turn_detection.create_response=pinned" in decisions

    async def test_callers_turn_detection_is_kept_with_create_response_false(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """The caller's semantic VAD, asking `create_response: true`, keeps its settings."""
        client = await server_client(client_for, make_settings)
        detection = {"type": "semantic_vad", "eagerness": "low", "create_response": True}
        session = {"type": "realtime", "audio": {"input": {"turn_detection": detection}}}
        answer = await client.post(REALTIME_CALLS, files=multipart(session))
        assert answer.status_code == 201, answer.text
        sent = sent_session(upstream)["audio"]["input"]["turn_detection"]
        assert sent == {"type": "semantic_vad", "eagerness": "low", "create_response": False}

    async def test_turn_detection_off_stays_off(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """Push-to-talk (turn detection null) starts no response anyway: it stays null."""
        client = await server_client(client_for, make_settings)
        session = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}
        assert (await client.post(REALTIME_CALLS, files=multipart(session))).status_code == 201
        assert sent_session(upstream)["audio"]["input"]["turn_detection"] is None

    async def test_dry_run_shows_the_pin(
        self, client_for: ClientFor, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        client = await server_client(client_for, make_settings)
        answer = await client.post(
            f"{REALTIME_CALLS}?dry_run=true", files=multipart({"type": "realtime"})
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        detection = body["session"]["audio"]["input"]["turn_detection"]
        assert detection == {"type": "server_vad", "create_response": False}
        [pin] = [d for d in body["policy_decisions"] if d["param"] == CREATE_RESPONSE]
        assert (pin["action"], pin["applied"]) == ("pinned", False)
        assert not upstream.routes["call"].called

    async def test_client_mode_sends_turn_detection_as_asked(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter, sideband: ScriptedSideband
    ) -> None:
        """The default: no pin, no tag, committed turns left to OpenAI."""
        assert (await create(client)).status_code == 201
        assert "turn_detection" not in sent_session(upstream).get("audio", {}).get("input", {})
        await attached(sideband, CALL_ID)
        sideband.emit(CALL_ID, COMMITTED)
        sideband.emit(CALL_ID, created("resp_client_1"))
        sideband.emit(CALL_ID, echo(transcription={"model": "gpt-4o-mini-transcribe"}))
        await sideband.until(lambda: sideband.sent[CALL_ID])
        # Only the transcription's revert: no response.create, no cancel.
        assert [event["type"] for event in sideband.sent[CALL_ID]] == ["session.update"]

    async def test_tag_is_in_the_record_never_in_state_or_logs(
        self, make_settings: MakeSettings, sideband: ScriptedSideband, upstream: respx.MockRouter
    ) -> None:
        """The record holds the tag (for an adopting worker); the owner's view and the logs
        never show it, nor the marks made from it."""
        with redis_server() as redis:
            settings = make_settings(calls_responses="server", redis_url=redis.url)
            transport = httpx.MockTransport(upstream.async_handler)
            with captured_logs() as logs:
                async with serving(create_app(settings, transport, sideband)) as client:
                    assert (await create(client)).status_code == 201
                    await attached(sideband, CALL_ID)
                    own = (await answer_turn(sideband))["response"]["metadata"][METADATA_KEY]
                    sideband.emit(CALL_ID, created("resp_untagged"))
                    await sideband.until(lambda: cancels(sideband))
                    state = await client.get(f"{REALTIME_CALLS}/{CALL_ID}")
                    with redis.client() as admin:
                        record = CallRecord.loads(admin.get(f"rtp:call:realtime:{CALL_ID}"))
        assert record is not None
        assert record.tag is not None
        tag = record.tag
        assert len(tag) == 64
        assert valid(tag, CALL_ID, own, wall_ms())
        assert state.status_code == 200
        assert "audio.input.turn_detection.create_response" in state.json()["fixed"]
        for secret in (tag, own):
            assert secret not in state.text
            assert secret not in repr(logs)


class TestTurns:
    """Committed turns answered by the supervisor; every other response cancelled."""

    async def test_committed_turn_gets_a_marked_response_create(
        self, client_for: ClientFor, make_settings: MakeSettings, sideband: ScriptedSideband
    ) -> None:
        client = await server_client(client_for, make_settings)
        await create(client)
        await attached(sideband, CALL_ID)
        before = await metric(client, 'rtp_call_turns_total{outcome="answered"}')
        sent = await answer_turn(sideband)
        assert sent["type"] == "response.create"
        # Nothing overridden: the response runs on the session's (the policy's) instructions
        # and tools; only the mark.
        assert list(sent["response"]) == ["metadata"]
        assert mark_of(sent["response"]) is not None
        assert await metric(client, 'rtp_call_turns_total{outcome="answered"}') == before + 1

    async def test_own_response_goes_on_others_are_cancelled(
        self, client_for: ClientFor, make_settings: MakeSettings, sideband: ScriptedSideband
    ) -> None:
        """The supervisor's response is left alone; one without a mark, one replaying the
        supervisor's (seen by the browser) and one with a forged mark are cancelled,
        audited with field `metadata`."""
        client = await server_client(client_for, make_settings)
        await create(client)
        await attached(sideband, CALL_ID)
        own = (await answer_turn(sideband))["response"]["metadata"]
        before = await overrides_metric(client, "response", "cancel")
        with captured_logs() as logs:
            sideband.emit(CALL_ID, created("resp_own", own))
            sideband.emit(CALL_ID, created("resp_untagged"))
            sideband.emit(CALL_ID, created("resp_replayed", own))
            sideband.emit(CALL_ID, created("resp_forged", {METADATA_KEY: "1.2.3"}))
            await sideband.until(lambda: len(cancels(sideband)) >= 3)
        assert cancels(sideband) == ["resp_untagged", "resp_replayed", "resp_forged"]
        assert [audit["fields"] for audit in audits(logs)] == [["metadata"]] * 3
        assert await overrides_metric(client, "response", "cancel") == before + 3
        assert own[METADATA_KEY] not in repr(logs)

    async def test_unmarked_response_with_other_breaches_names_them_all(
        self, client_for: ClientFor, make_settings: MakeSettings, sideband: ScriptedSideband
    ) -> None:
        client = await server_client(client_for, make_settings)
        await create(client)
        await attached(sideband, CALL_ID)
        with captured_logs() as logs:
            event = created("resp_voice")
            event["response"]["audio"] = {"output": {"voice": "verse"}}
            sideband.emit(CALL_ID, event)
            await sideband.until(lambda: cancels(sideband))
        [audit] = audits(logs)
        assert audit["fields"] == ["metadata", "audio.output.voice"]

    async def test_turned_on_create_response_is_restored_in_the_sessions_turn_detection(
        self, client_for: ClientFor, make_settings: MakeSettings, sideband: ScriptedSideband
    ) -> None:
        """The browser's session.update sets `create_response: true`: one session.update
        puts it back false inside the session's own turn detection (set whole)."""
        client = await server_client(client_for, make_settings)
        await create(client)
        await attached(sideband, CALL_ID)
        detection = {"type": "semantic_vad", "eagerness": "high", "create_response": True}
        sideband.emit(CALL_ID, echo(turn_detection=detection))
        await sideband.until(lambda: sideband.sent[CALL_ID])
        [update] = sideband.sent[CALL_ID]
        restored = update["session"]["audio"]["input"]["turn_detection"]
        assert restored == {**detection, "create_response": False}
        # Held again (or turned off): nothing more to restore.
        sideband.emit(CALL_ID, echo(turn_detection={**detection, "create_response": False}))
        sideband.emit(CALL_ID, echo(turn_detection=None))
        sideband.emit(CALL_ID, COMMITTED)
        await sideband.until(lambda: len(sideband.sent[CALL_ID]) > 1)
        assert [event["type"] for event in sideband.sent[CALL_ID]] == [
            "session.update",
            "response.create",
        ]

    async def test_attach_restates_the_pin(
        self, client_for: ClientFor, make_settings: MakeSettings, sideband: ScriptedSideband
    ) -> None:
        """On every attach the call's turn detection goes up with `create_response: false`."""
        client = await server_client(client_for, make_settings)
        await create(client)
        await sideband.attached(CALL_ID)
        await sideband.until(lambda: sideband.sent[CALL_ID])
        [restate] = sideband.sent[CALL_ID]
        detection = restate["session"]["audio"]["input"]["turn_detection"]
        assert detection == {"type": "server_vad", "create_response": False}


class TestQuotaFirst:
    """A caller whose day is spent gets no new response: the call is hung up first.

    The caller's other call spends the day: the quota rule hangs that one up when its
    usage crosses, and this one, whose own usage never crossed, on its next turn.
    """

    async def spend(
        self,
        client: httpx.AsyncClient,
        sideband: ScriptedSideband,
        upstream: respx.MockRouter,
        usage: dict[str, Any] | None = None,
    ) -> None:
        """The caller's second call (`OTHER_ID`) reports `SPENT` tokens (or `usage`), crossing
        the quota."""
        await create(client)
        await attached(sideband, CALL_ID)
        route = upstream.routes["call"]
        route.side_effect = None
        route.return_value = httpx.Response(
            201,
            content=SDP_ANSWER.encode(),
            headers={
                "Location": f"/v1/realtime/calls/{OTHER_ID}",
                "Content-Type": "application/sdp",
            },
        )
        assert (await create(client)).status_code == 201
        await attached(sideband, OTHER_ID)
        reported = usage or {"total_tokens": SPENT}
        sideband.emit(OTHER_ID, {"type": "response.done", "response": {"usage": reported}})
        await sideband.until(lambda: len(hangups(upstream)) == 1)
        assert hangups(upstream) == [f"/v1/realtime/calls/{OTHER_ID}/hangup"]

    async def test_spent_day_hangs_up_instead_of_answering(
        self,
        client_for: ClientFor,
        make_settings: MakeSettings,
        sideband: ScriptedSideband,
        upstream: respx.MockRouter,
    ) -> None:
        # A reserve of 10 of the 100 tokens: both calls are admitted (a call's default
        # reserve would hold the whole quota).
        client = await server_client(
            client_for, make_settings, quota_tokens_per_day=SPENT, calls_reserve_tokens=10
        )
        await self.spend(client, sideband, upstream)
        before = await metric(client, 'rtp_call_turns_total{outcome="quota"}')
        sideband.emit(CALL_ID, COMMITTED)
        await sideband.until(lambda: len(hangups(upstream)) == 2)
        assert hangups(upstream)[1] == f"/v1/realtime/calls/{CALL_ID}/hangup"
        assert not [e for e in sideband.sent[CALL_ID] if e["type"] == "response.create"]
        assert await metric(client, 'rtp_call_turns_total{outcome="quota"}') == before + 1

    @pytest.mark.parametrize(
        ("budget", "how"),
        [
            ({"quota_usd_per_day": "0.05", "calls_reserve_usd": "0.01"}, "quota"),
            ({"quota_usd_per_day_total": "0.05", "calls_reserve_usd": "0.01"}, "ceiling"),
        ],
    )
    async def test_spent_dollars_hang_up_instead_of_answering(
        self,
        client_for: ClientFor,
        make_settings: MakeSettings,
        sideband: ScriptedSideband,
        upstream: respx.MockRouter,
        budget: dict[str, str],
        how: str,
    ) -> None:
        """The other call's $0.0512 response spends the caller's (or the deployment's) $0.05:
        this call's next turn starts no response, and the call is hung up for it (a $0.01
        reserve each, so both calls are admitted)."""
        client = await server_client(client_for, make_settings, **budget)
        await self.spend(client, sideband, upstream, RESPONSE_USAGE)
        sideband.emit(CALL_ID, COMMITTED)
        await sideband.until(lambda: len(hangups(upstream)) == 2)
        assert hangups(upstream)[1] == f"/v1/realtime/calls/{CALL_ID}/hangup"
        assert not [e for e in sideband.sent[CALL_ID] if e["type"] == "response.create"]
        assert await metric(client, f'rtp_call_hangups_total{{reason="{how}"}}') >= 1

    async def test_under_quota_the_turn_is_answered(
        self,
        client_for: ClientFor,
        make_settings: MakeSettings,
        sideband: ScriptedSideband,
        upstream: respx.MockRouter,
    ) -> None:
        """The same day one token short of the quota: the turn is answered."""
        client = await server_client(client_for, make_settings, quota_tokens_per_day=SPENT + 1)
        await create(client)
        await attached(sideband, CALL_ID)
        usage = {"type": "response.done", "response": {"usage": {"total_tokens": SPENT}}}
        sideband.emit(CALL_ID, usage)
        assert (await answer_turn(sideband))["type"] == "response.create"
        assert not hangups(upstream)
