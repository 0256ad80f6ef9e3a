"""The emulator's telephone: signed webhooks, OpenAI's accept/reject/refer, the call's outcome.

The emulator runs in process with fake media; its webhooks go to an
`httpx.MockTransport` that keeps each request, so a test verifies them with
the `standardwebhooks` package (the receiver's own code) and validates their
bodies with the openai SDK's webhook event models. What a test sends to
accept, reject or refer is typed and validated as the SDK's params TypedDicts.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest
from openai.types.live import SessionAcceptParams, SessionReferParams, SessionRejectParams
from openai.types.realtime import CallAcceptParams, CallReferParams, CallRejectParams
from openai.types.webhooks import (
    LiveCallIncomingWebhookEvent,
    LiveTransportIncomingWebhookEvent,
    RealtimeCallIncomingWebhookEvent,
    SafetyIdentifierBlockedWebhookEvent,
)
from pydantic import TypeAdapter
from standardwebhooks import Webhook, WebhookVerificationError

from emulator import Emulator, create_emulator, live_schema
from emulator.calls.sideband import EmulatorSidebandConnection
from emulator.schema import live_sip_file
from service.server.emulated import in_process, own_webhook_url
from tests.emulators import emulator_client
from tests.servers import emulator_process

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]
KEY = {"Authorization": "Bearer sk-emulator-test"}
SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
URL = "http://service.test/v1/webhooks/openai"
TO, FROM = "+15551234567", "+15557654321"
ACCEPT: CallAcceptParams = {
    "type": "realtime",
    "model": "gpt-realtime",
    "instructions": "Answer the phone.",
    "audio": {"output": {"voice": "marin"}},
}
LIVE_ACCEPT: SessionAcceptParams = {"session": {"type": "live", "model": "gpt-live-1"}}


class Receiver:
    """The service's webhook endpoint as a mock transport: keeps each request, answers 200."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={})

    def bodies(self) -> list[dict[str, Any]]:
        """Every body received, parsed."""
        return [orjson.loads(request.content) for request in self.requests]


def verified(request: httpx.Request, secret: str = SECRET) -> dict[str, Any]:
    """The body, verified as a receiver verifies it (raises on a bad signature)."""
    body: dict[str, Any] = Webhook(secret).verify(request.content, dict(request.headers))
    return body


@pytest.fixture(name="receiver")
def fixture_receiver() -> Receiver:
    """The webhooks the emulator sends."""
    return Receiver()


@pytest.fixture(name="emulator")
async def fixture_emulator(receiver: Receiver) -> AsyncIterator[Emulator]:
    """A fake-media emulator whose telephone posts to `receiver`."""
    app = create_emulator(
        fake_media=True,
        usage_interval=None,
        webhook_url=URL,
        webhook_secret=SECRET,
        webhook_transport=httpx.MockTransport(receiver),
    )
    try:
        yield app
    finally:
        await app.calls.close()


@pytest.fixture(name="http")
async def fixture_http(emulator: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the emulator."""
    async with emulator_client(emulator) as client:
        yield client


async def ring(http: httpx.AsyncClient, **options: Any) -> dict[str, Any]:
    """Dial the project from FROM to TO; the control's answer."""
    response = await http.post("/_emulator/sip/incoming", json={"to": TO, "from": FROM, **options})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def record(http: httpx.AsyncClient, call_id: str) -> dict[str, Any]:
    """`GET /_emulator/calls/{id}`."""
    response = await http.get(f"/_emulator/calls/{call_id}")
    assert response.status_code == 200, response.text
    shown: dict[str, Any] = response.json()
    return shown


async def answer(
    http: httpx.AsyncClient, surface: str, call_id: str, action: str, body: object
) -> httpx.Response:
    """`POST /v1/{realtime/calls|live/sessions}/{id}/{action}` with a key."""
    path = "realtime/calls" if surface == "realtime" else "live/sessions"
    return await http.post(f"/v1/{path}/{call_id}/{action}", json=body, headers=KEY)


class TestWebhookSignature:
    """Each webhook is signed per Standard Webhooks with the project's secret."""

    async def test_verifies_with_the_secret(
        self, http: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        """The incoming-call webhook verifies with standardwebhooks and the secret."""
        rung = await ring(http)
        assert verified(receiver.requests[0])["data"]["call_id"] == rung["call_id"]

    async def test_fails_with_another_secret(
        self, http: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        """A genuine webhook does not verify with any other secret."""
        await ring(http)
        other = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        with pytest.raises(WebhookVerificationError):
            verified(receiver.requests[0], other)

    async def test_bad_signature_fails_verification(
        self, http: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        """`bad_signature` sends a webhook that the right secret does not verify."""
        await ring(http, bad_signature=True)
        with pytest.raises(WebhookVerificationError):
            verified(receiver.requests[0])

    async def test_headers_are_standard_webhooks(
        self, http: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        """The request carries `webhook-id`, `webhook-timestamp` and a `v1,` signature."""
        rung = await ring(http)
        headers = receiver.requests[0].headers
        assert headers["webhook-id"] == rung["webhooks"][0]["id"]
        assert headers["webhook-timestamp"].isdigit()
        assert headers["webhook-signature"].startswith("v1,")

    async def test_age_backdates_the_timestamp(
        self, http: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        """`age_s` 360 sends a timestamp six minutes old, which a receiver refuses as stale."""
        await ring(http, age_s=360)
        with pytest.raises(WebhookVerificationError, match="too old"):
            verified(receiver.requests[0])

    async def test_redelivery_keeps_the_webhook_id(
        self, http: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        """A redelivery sends the same `webhook-id` and body again, verifiable."""
        rung = await ring(http)
        response = await http.post(f"/_emulator/sip/{rung['call_id']}/redeliver")
        assert response.status_code == 200
        first, second = receiver.requests
        assert first.headers["webhook-id"] == second.headers["webhook-id"]
        assert verified(second) == verified(first)
        assert response.json()["webhooks"][0]["statuses"] == [200, 200]

    async def test_copies_deliver_one_id_at_once(
        self, http: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        """`copies` 3 delivers the same `webhook-id` three times, each verifiable."""
        await ring(http, copies=3)
        assert len({request.headers["webhook-id"] for request in receiver.requests}) == 1
        assert [verified(request)["type"] for request in receiver.requests] == [
            "realtime.call.incoming"
        ] * 3

    async def test_unconfigured_emulator_refuses_to_ring(self) -> None:
        """Without a webhook URL and secret the control is a 400 and no call rings."""
        app = create_emulator(fake_media=True, usage_interval=None)
        async with emulator_client(app) as http:
            response = await http.post("/_emulator/sip/incoming", json={"to": TO, "from": FROM})
        await app.calls.close()
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "webhook_not_configured"

    async def test_failed_delivery_is_reported(self, http: httpx.AsyncClient) -> None:
        """A service that cannot be reached shows as a null status, not an error."""

        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("refused", request=request)

        app = create_emulator(
            fake_media=True,
            usage_interval=None,
            webhook_url=URL,
            webhook_secret=SECRET,
            webhook_transport=httpx.MockTransport(refuse),
        )
        async with emulator_client(app) as client:
            rung = await ring(client)
        await app.calls.close()
        assert rung["webhooks"][0]["statuses"] == [None]


class TestWebhookShapes:
    """The bodies are the openai SDK's webhook events, with the INVITE's headers."""

    async def test_realtime_event_is_the_sdks(
        self, http: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        """A Realtime number's webhook is a valid `RealtimeCallIncomingWebhookEvent`."""
        rung = await ring(http)
        event = RealtimeCallIncomingWebhookEvent.model_validate(receiver.bodies()[0])
        assert event.data.call_id == rung["call_id"]
        assert event.data.call_id.startswith("rtc_")

    async def test_sip_headers_carry_the_numbers(
        self, http: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        """`sip_headers` has `From`, `To` and `Call-ID`, the numbers in SIP URIs."""
        await ring(http)
        headers = {h["name"]: h["value"] for h in receiver.bodies()[0]["data"]["sip_headers"]}
        assert f"<sip:{TO}@" in headers["To"]
        assert f"<sip:{FROM}@" in headers["From"]
        assert headers["Call-ID"]

    async def test_live_event_is_the_sdks(
        self, http: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        """A Live number's webhook is a valid `live.transport.incoming` of type sip."""
        rung = await ring(http, kind="live")
        event = LiveTransportIncomingWebhookEvent.model_validate(receiver.bodies()[0])
        assert event.data.type == "sip"
        assert event.data.session_id == rung["session_id"]
        assert event.data.session_id.startswith("live_")

    async def test_both_sends_both_surfaces(
        self, http: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        """`both` raises the Live and the Realtime webhook of one call, with distinct ids."""
        rung = await ring(http, kind="live", both=True)
        live, realtime = receiver.bodies()
        assert (
            LiveTransportIncomingWebhookEvent.model_validate(live).data.session_id
            == (rung["session_id"])
        )
        assert (
            RealtimeCallIncomingWebhookEvent.model_validate(realtime).data.call_id
            == (rung["call_id"])
        )
        assert len({request.headers["webhook-id"] for request in receiver.requests}) == 2

    async def test_legacy_sends_live_call_incoming(
        self, http: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        """`legacy` adds the deprecated `live.call.incoming`, valid for the SDK."""
        rung = await ring(http, kind="live", legacy=True)
        event = LiveCallIncomingWebhookEvent.model_validate(receiver.bodies()[-1])
        assert event.data.session_id == rung["session_id"]

    async def test_safety_blocked_is_the_sdks(
        self, http: httpx.AsyncClient, receiver: Receiver
    ) -> None:
        """`/_emulator/safety/blocked` sends a verified `safety_identifier.blocked`."""
        body = {"safety_identifier": "caller-hash"}
        response = await http.post("/_emulator/safety/blocked", json=body)
        assert response.status_code == 200
        event = SafetyIdentifierBlockedWebhookEvent.model_validate(verified(receiver.requests[0]))
        assert event.data.safety_identifier == "caller-hash"

    async def test_unknown_kind_is_refused(self, http: httpx.AsyncClient) -> None:
        """A `kind` other than realtime or live is a 400 naming it."""
        body = {"to": TO, "from": FROM, "kind": "webrtc"}
        response = await http.post("/_emulator/sip/incoming", json=body)
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "kind"


class TestAccept:
    """Accepting a ringing call opens it on the sideband with the accepted session."""

    async def test_sideband_serves_the_accepted_call(
        self, http: httpx.AsyncClient, emulator: Emulator
    ) -> None:
        """After accept, the sideband's first event is `session.created` with that session."""
        call_id = (await ring(http))["call_id"]
        body = TypeAdapter(CallAcceptParams).validate_python(ACCEPT)
        assert (await answer(http, "realtime", call_id, "accept", body)).status_code == 200
        connection: EmulatorSidebandConnection = await emulator.sideband().connect(
            "realtime", call_id
        )
        event = await connection.recv()
        await connection.close()
        assert event["type"] == "session.created"
        assert event["session"]["instructions"] == ACCEPT["instructions"]

    async def test_accepted_call_takes_controls(self, http: httpx.AsyncClient) -> None:
        """An accepted call plays a response with usage, as a WebRTC call does."""
        call_id = (await ring(http))["call_id"]
        await answer(http, "realtime", call_id, "accept", ACCEPT)
        response = await http.post(f"/_emulator/calls/{call_id}/response", json={})
        assert "response.done" in response.json()["emitted"]

    async def test_outcome_is_recorded(self, http: httpx.AsyncClient) -> None:
        """The record shows the call accepted on the Realtime surface, with its session."""
        call_id = (await ring(http))["call_id"]
        await answer(http, "realtime", call_id, "accept", ACCEPT)
        shown = await record(http, call_id)
        assert shown["state"] == "connected"
        assert shown["sip"]["state"] == "accepted"
        assert shown["sip"]["surface"] == "realtime"
        assert shown["sip"]["session"]["model"] == "gpt-realtime"

    async def test_live_accept_opens_a_live_session(
        self, http: httpx.AsyncClient, emulator: Emulator
    ) -> None:
        """Live's accept opens the session under its `live_` id: `session.started` first."""
        session_id = (await ring(http, kind="live"))["session_id"]
        body = TypeAdapter(SessionAcceptParams).validate_python(LIVE_ACCEPT)
        assert (await answer(http, "live", session_id, "accept", body)).status_code == 200
        connection = await emulator.sideband().connect("live", session_id)
        event = await connection.recv()
        await connection.close()
        assert event["type"] == "session.started"

    async def test_invalid_session_is_refused_and_keeps_ringing(
        self, http: httpx.AsyncClient
    ) -> None:
        """An unknown session field is a 400 `unknown_parameter`, and the call still rings."""
        call_id = (await ring(http))["call_id"]
        response = await answer(http, "realtime", call_id, "accept", {**ACCEPT, "tone": "x"})
        assert response.json()["error"]["code"] == "unknown_parameter"
        assert (await record(http, call_id))["sip"]["state"] == "ringing"

    async def test_accept_needs_a_session_type(self, http: httpx.AsyncClient) -> None:
        """An accept without `type: realtime` is refused as the SDK's `CallAcceptParams` are."""
        call_id = (await ring(http))["call_id"]
        body = {key: value for key, value in ACCEPT.items() if key != "type"}
        response = await answer(http, "realtime", call_id, "accept", body)
        assert response.json()["error"]["code"] == "missing_required_parameter"

    async def test_accept_needs_a_key(self, http: httpx.AsyncClient) -> None:
        """Without a key header the accept is a 401, as OpenAI's."""
        call_id = (await ring(http))["call_id"]
        response = await http.post(f"/v1/realtime/calls/{call_id}/accept", json=ACCEPT)
        assert response.status_code == 401


class TestRefused:
    """What OpenAI refuses: unknown calls, and answering a call no longer ringing."""

    async def test_accept_twice_is_409(self, http: httpx.AsyncClient) -> None:
        """A second accept of the same call is a 409 `call_not_ringing`."""
        call_id = (await ring(http))["call_id"]
        await answer(http, "realtime", call_id, "accept", ACCEPT)
        response = await answer(http, "realtime", call_id, "accept", ACCEPT)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "call_not_ringing"

    async def test_accept_after_reject_is_409(self, http: httpx.AsyncClient) -> None:
        """A rejected call cannot be accepted."""
        call_id = (await ring(http))["call_id"]
        await answer(http, "realtime", call_id, "reject", {"status_code": 486})
        response = await answer(http, "realtime", call_id, "accept", ACCEPT)
        assert response.status_code == 409

    async def test_unknown_call_is_404(self, http: httpx.AsyncClient) -> None:
        """Accepting an id no call has is a 404 in OpenAI's envelope."""
        response = await answer(http, "realtime", "rtc_nothing", "accept", ACCEPT)
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "invalid_request_error"

    async def test_second_surface_is_409(self, http: httpx.AsyncClient) -> None:
        """Once the Realtime accept selected the runtime, Live's accept of it is a 409."""
        rung = await ring(http, kind="live", both=True)
        await answer(http, "realtime", rung["call_id"], "accept", ACCEPT)
        response = await answer(http, "live", rung["session_id"], "accept", LIVE_ACCEPT)
        assert response.status_code == 409

    async def test_ids_belong_to_their_surface(self, http: httpx.AsyncClient) -> None:
        """A `rtc_` id is unknown to Live's routes (404)."""
        call_id = (await ring(http))["call_id"]
        response = await answer(http, "live", call_id, "accept", LIVE_ACCEPT)
        assert response.status_code == 404


class TestRejectReferHangup:
    """Rejections, transfers and hang-ups are served and recorded."""

    async def test_reject_is_recorded_with_its_status(self, http: httpx.AsyncClient) -> None:
        """A reject with 486 shows as rejected with 486."""
        call_id = (await ring(http))["call_id"]
        body = TypeAdapter(CallRejectParams).validate_python({"status_code": 486})
        assert (await answer(http, "realtime", call_id, "reject", body)).status_code == 200
        shown = await record(http, call_id)
        assert (shown["state"], shown["sip"]["state"]) == ("closed", "rejected")
        assert shown["sip"]["status_code"] == 486

    async def test_reject_defaults_to_603(self, http: httpx.AsyncClient) -> None:
        """A Realtime reject without a body declines with 603."""
        call_id = (await ring(http))["call_id"]
        response = await http.post(f"/v1/realtime/calls/{call_id}/reject", headers=KEY)
        assert response.status_code == 200
        assert (await record(http, call_id))["sip"]["status_code"] == 603

    async def test_live_reject_needs_a_status(self, http: httpx.AsyncClient) -> None:
        """Live's reject requires `status_code` (the SDK's `SessionRejectParams`)."""
        session_id = (await ring(http, kind="live"))["session_id"]
        response = await answer(http, "live", session_id, "reject", {})
        assert response.json()["error"]["code"] == "missing_required_parameter"
        body = TypeAdapter(SessionRejectParams).validate_python({"status_code": 603})
        assert (await answer(http, "live", session_id, "reject", body)).status_code == 200

    async def test_refer_is_recorded_with_its_target(self, http: httpx.AsyncClient) -> None:
        """A referred ringing call shows as referred to that target."""
        call_id = (await ring(http))["call_id"]
        body = TypeAdapter(CallReferParams).validate_python({"target_uri": "tel:+14155550123"})
        assert (await answer(http, "realtime", call_id, "refer", body)).status_code == 200
        shown = await record(http, call_id)
        assert shown["sip"]["state"] == "referred"
        assert shown["sip"]["target_uri"] == "tel:+14155550123"

    async def test_refer_ends_an_accepted_call(self, http: httpx.AsyncClient) -> None:
        """Referring an accepted call ends OpenAI's leg of it (`ended: referred`)."""
        session_id = (await ring(http, kind="live"))["session_id"]
        await answer(http, "live", session_id, "accept", LIVE_ACCEPT)
        body = TypeAdapter(SessionReferParams).validate_python({"target_uri": "sip:a@b.example"})
        assert (await answer(http, "live", session_id, "refer", body)).status_code == 200
        shown = await record(http, session_id)
        assert (shown["ended"], shown["sip"]["state"]) == ("referred", "referred")

    async def test_blank_target_is_refused(self, http: httpx.AsyncClient) -> None:
        """A blank `target_uri` is a 400 and the call still rings."""
        call_id = (await ring(http))["call_id"]
        response = await answer(http, "realtime", call_id, "refer", {"target_uri": " "})
        assert response.json()["error"]["param"] == "target_uri"
        assert (await record(http, call_id))["sip"]["state"] == "ringing"

    async def test_hangup_of_an_accepted_call_is_recorded(self, http: httpx.AsyncClient) -> None:
        """Hanging up an accepted call ends it (`hangup`) and records it hung up."""
        call_id = (await ring(http))["call_id"]
        await answer(http, "realtime", call_id, "accept", ACCEPT)
        assert (await answer(http, "realtime", call_id, "hangup", {})).status_code == 200
        shown = await record(http, call_id)
        assert (shown["ended"], shown["sip"]["state"]) == ("hangup", "hung_up")

    async def test_hangup_of_a_ringing_call_is_recorded(self, http: httpx.AsyncClient) -> None:
        """Hanging up a call still ringing records it hung up."""
        call_id = (await ring(http))["call_id"]
        assert (await answer(http, "realtime", call_id, "hangup", {})).status_code == 200
        assert (await record(http, call_id))["sip"]["state"] == "hung_up"


class HttpReceiver:
    """A real HTTP endpoint on loopback that keeps each POST (body and headers), answers 200."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((body, dict(self.headers.items())))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1/webhooks/openai"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(name="http_receiver")
def fixture_http_receiver() -> Iterator[HttpReceiver]:
    """A webhook endpoint on a real socket."""
    receiver = HttpReceiver()
    try:
        yield receiver
    finally:
        receiver.close()


class TestSchemasAndWiring:
    """Live's answer schemas are the SDK's; the in-process emulator dials the service."""

    @pytest.mark.parametrize("action", ["accept", "reject", "refer"])
    def test_shipped_live_sip_schema_is_the_sdks(self, action: str) -> None:
        """Each shipped Live SIP schema equals the one generated from the installed SDK."""
        params = live_schema.sip_params()[action]
        assert live_sip_file(action).read_text(encoding="utf-8") == live_schema.generate(params)

    async def test_in_process_emulator_posts_to_the_url(self, http_receiver: HttpReceiver) -> None:
        """`in_process(url, secret)`: the service's emulator posts signed webhooks to its URL."""
        transport, _ = in_process(http_receiver.url, SECRET)
        async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
            rung = await ring(client)
            await client.post(f"/v1/realtime/calls/{rung['call_id']}/hangup", headers=KEY)
        body, headers = http_receiver.received[0]
        assert Webhook(SECRET).verify(body, headers)["data"]["call_id"] == rung["call_id"]

    def test_process_flags_sign_and_post(self, http_receiver: HttpReceiver) -> None:
        """`python -m service emulator --webhook-url --webhook-secret` posts signed webhooks."""
        flags = ("--fake-media", "--webhook-url", http_receiver.url, "--webhook-secret", SECRET)
        with emulator_process(*flags) as emulator:
            dialled = {"to": TO, "from": FROM, "kind": "live"}
            rung = httpx.post(f"{emulator.url}/_emulator/sip/incoming", json=dialled).json()
        assert rung["webhooks"][0]["statuses"] == [200]
        body, headers = http_receiver.received[0]
        assert Webhook(SECRET).verify(body, headers)["data"]["session_id"] == rung["session_id"]

    def test_own_webhook_url_dials_loopback_for_a_wildcard(self) -> None:
        """HOST 0.0.0.0 is dialled as 127.0.0.1, an IPv6 host in brackets."""
        assert own_webhook_url("0.0.0.0", 8000) == "http://127.0.0.1:8000/v1/webhooks/openai"  # noqa: S104 - a HOST value
        assert own_webhook_url("::", 9000) == "http://[::1]:9000/v1/webhooks/openai"
