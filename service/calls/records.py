"""What the service remembers about a call it created, in the shared store.

Three uses, one record:

- **hang-ups**: a call id alone must not let anyone end a call (ids travel
  through browsers and logs), so the record names the creating caller by
  `owner`, a hash of the identity. A hang-up by anyone else, or for a call the
  service did not create, is a 404, the same answer as for an id that never
  existed. A record is created only where its id has none (`create`, atomic
  across workers): an upstream answering a creation with an id already
  recorded cannot hand one caller's call to another;
- **supervision**: what the policy fixed (`fixed`: GA path -> value), the
  caller's profile (`profile`) and the session the call was created with
  (`created`, less its instructions), when
  the call started and must end, and its live-call slot, so that any worker
  can take over a call whose supervisor died; and `caller`, the caller as
  audit lines name it (the identity, or its hash with `AUTH_HASH_IDENTITIES`),
  so the adopting worker's lines name the same caller;
- **its owner's view** (`GET /v1/realtime/calls/{id}`, `service.calls.state`):
  the overrides the supervisor met (the last `OVERRIDES_KEPT`, by field name
  and outcome, never a value) and the call's usage so far, written by the
  supervising worker when they change, so any worker can answer.

Records live in the shared store (process memory, or Redis so that any
replica can answer), and expire after `RECORD_TTL_S`, longer than any call
may last (`CALLS_MAX_SECONDS` is at most a day). `fixed` can hold the
operator's instructions: Redis holds them as it holds every other call
record, and nothing else shows them. MCP credentials it never holds: a
record is written with its MCP tools sealed (identity and a digest of the
credentials, `service.calls.sealed`), and an adopting worker resolves them
from the caller's policy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import orjson

from service.calls.sealed import sealed
from service.contract.calls import CallKind
from service.store import Records

RECORD_TTL_S = 26 * 3600
OVERRIDES_KEPT = 20
"""A record keeps this many overrides, the latest: enough to show, bounded in size."""
Outcome = Literal["reverting", "reverted", "cancelled", "deleted", "hung_up"]
Scope = Literal["session", "response", "item", "tool"]
"""What broke the policy: the session (`session.updated`), a response (`response.created`),
a conversation item (a system or developer message), or a tool call of a response."""


def owner_of(identity: str) -> str:
    """The identity as records and usage keys hold it: a hash, no caller names in keys."""
    return hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()


@dataclass(slots=True)
class Override:
    """A fixed field the session was seen to change, and what the supervisor did about it."""

    field: str
    """The GA path (`audio.output.voice`): a name, never the value either side held."""
    at_ms: int
    """When the `session.updated` showing it arrived."""
    outcome: Outcome
    """`reverting`: restored, not yet confirmed; `reverted`: a `session.updated` shows the
    policy's value again; `cancelled`: the response was cancelled; `deleted`: the item was
    deleted; `hung_up`: the call was ended for it."""
    revert_ms: int | None = None
    """From `at_ms` to the `session.updated` that showed the policy's value again."""
    scope: Scope = "session"
    """What broke the policy (records written before scopes were kept: the session)."""


@dataclass(slots=True)
class CallRecord:
    """One call the service created."""

    kind: CallKind
    call_id: str
    owner: str
    """`owner_of(identity)`: who may hang the call up, and whose usage it is."""
    caller: str
    """The caller as audit lines name it (hashed with AUTH_HASH_IDENTITIES)."""
    started_ms: int
    deadline_ms: int
    fixed: dict[str, Any] = field(default_factory=dict)
    """What the policy fixed, by GA path (`audio.output.voice`), as sent upstream."""
    profile: str = "default"
    """The caller's policy profile: the supervisor checks every event against its rules."""
    created: dict[str, Any] = field(default_factory=dict)
    """The session the call was created with, without instructions (the caller's own text
    stays out of the store; server-set instructions are in `fixed`): what a field the
    policy refuses is restored to."""
    slot: str | None = None
    """The caller's live-call slot member (`CALLS_MAX_CONCURRENT_PER_IDENTITY`), if any."""
    counted_seconds: float | None = None
    """GPT-Live's cumulative usage seconds already counted, written at a hand-over so the
    adopting worker counts on from there (None: unknown, after a crash)."""
    overrides: list[Override] = field(default_factory=list)
    """The last `OVERRIDES_KEPT` overrides, oldest first."""
    tokens: int = 0
    """Realtime: the tokens of this call's responses (`response.done` usage) so far."""
    usage_seconds: float = 0.0
    """GPT-Live: the session's `usage.seconds` as last reported."""
    cost_micro: int = 0
    """What the call has cost so far, in micro-dollars, at the price table's prices (as its
    worker last wrote it; the store's per-call counter is exact)."""
    held: dict[str, int] = field(default_factory=dict)
    """The hold counters admission reserved against (on the day it was taken) and how much
    on each (`service.calls.reserves`): fixed at creation."""
    unheld: dict[str, int] = field(default_factory=dict)
    """Per kind, what of the reserve was given back so far (as its worker last wrote it;
    the store's per-call counter is exact)."""
    tag: str | None = None
    """`CALLS_RESPONSES=server`: the call's secret tag, which marks the responses the
    supervisor starts (`service.calls.turns`); None: the client starts them. A secret:
    never logged, never in the call's state."""
    line: str | None = None
    """A phone call's dialled number, hashed: the line whose live-call slot it holds
    (`PHONE_MAX_CONCURRENT_PER_NUMBER`); None for a call the service created."""
    sealed_cache: tuple[object, object, orjson.Fragment, orjson.Fragment] | None = field(
        default=None, compare=False, repr=False, metadata={"stored": False}
    )
    """Not stored: `_sealed_parts`'s last result, and the values it was made from."""

    @property
    def member(self) -> str:
        """The call as leases and logs name it: `kind:call_id`."""
        return f"{self.kind}:{self.call_id}"

    def dumps(self) -> str:
        """The record as the store holds it: its MCP tools sealed (no credentials)."""
        # orjson writes the dataclasses (overrides) itself: no `asdict` copy of it all.
        data = {name: getattr(self, name) for name in FIELD_ORDER}
        data["fixed"], data["created"] = self._sealed_parts()
        return orjson.dumps(data).decode()

    def _sealed_parts(self) -> tuple[orjson.Fragment, orjson.Fragment]:
        """`fixed` and `created`, sealed and serialized, once per pair of values.

        A live call's record is written again whenever its usage changes (each
        keeper pass, for thousands of calls), and these two are most of it; they
        are replaced, never changed in place, so the pair they were made from
        tells whether the cache still holds.
        """
        cached = self.sealed_cache
        if cached is None or cached[0] is not self.fixed or cached[1] is not self.created:
            fixed = orjson.Fragment(orjson.dumps(sealed(self.fixed)))
            created = orjson.Fragment(orjson.dumps(sealed(self.created)))
            cached = self.sealed_cache = (self.fixed, self.created, fixed, created)
        return cached[2], cached[3]

    @classmethod
    def loads(cls, raw: str) -> CallRecord | None:
        """The record, or None if it is not one (a foreign value).

        A record written before records held only the owner's hash (it held the
        identity) is read as the hash; MCP tools are read as written (sealed, or
        plaintext from before records were sealed: `service.calls.sealed`); and
        fields this version does not know (written by a newer one) are left out, so
        calls survive a rolling upgrade.
        """
        try:
            data = orjson.loads(raw)
            if not isinstance(data, dict):
                return None
            if "identity" in data:
                identity = data.pop("identity")
                data.setdefault("owner", owner_of(str(identity)))
                data.setdefault("caller", data["owner"])
            data["overrides"] = [Override(**entry) for entry in data.get("overrides", ())]
            return cls(**{name: value for name, value in data.items() if name in FIELDS})
        except (orjson.JSONDecodeError, TypeError):
            return None


FIELD_ORDER = tuple(
    field.name for field in fields(CallRecord) if field.metadata.get("stored", True)
)
FIELDS = frozenset(FIELD_ORDER)


class CallRecords:
    """Call (kind, id) -> `CallRecord`, in the shared store."""

    def __init__(self, records: Records) -> None:
        self._records = records

    @staticmethod
    def _key(kind: CallKind, call_id: str) -> str:
        return f"rtp:call:{kind}:{call_id}"

    async def record(self, call: CallRecord) -> None:
        """Remember the call (`StoreUnavailable` if the store cannot)."""
        key = self._key(call.kind, call.call_id)
        await self._records.put(key, call.dumps(), RECORD_TTL_S * 1000)

    async def create(self, call: CallRecord) -> bool:
        """Remember a new call unless its id is recorded already; whether this wrote it.

        Atomic across workers (`put_if_absent`): of two creations answered with one
        id, one record wins. A record equal to `call` is this write's own (a write
        retried after a dead connection, whose first attempt had landed).
        """
        key = self._key(call.kind, call.call_id)
        value = call.dumps()
        if await self._records.put_if_absent(key, value, RECORD_TTL_S * 1000):
            return True
        return await self._records.get(key) == value

    async def update(self, calls: Sequence[CallRecord]) -> None:
        """Write the calls' records again, in one round trip, unless they were forgotten (ended)."""
        values = {self._key(call.kind, call.call_id): call.dumps() for call in calls}
        await self._records.update_existing(values, RECORD_TTL_S * 1000)

    async def get(self, kind: CallKind, call_id: str) -> CallRecord | None:
        raw = await self._records.get(self._key(kind, call_id))
        return CallRecord.loads(raw) if raw is not None else None

    async def missing(self, calls: Sequence[CallRecord]) -> list[CallRecord]:
        """Those of `calls` whose record the store does not hold (one round trip)."""
        by_key = {self._key(call.kind, call.call_id): call for call in calls}
        return [by_key[key] for key in await self._records.missing(list(by_key))]

    async def forget(self, kind: CallKind, call_id: str) -> None:
        """Drop the record once the call ended: the id can end nothing any more."""
        await self._records.delete(self._key(kind, call_id))
