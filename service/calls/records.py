"""What the service remembers about a call it created, in the shared store.

Two uses, one record:

- **hang-ups**: a call id alone must not let anyone end a call (ids travel
  through browsers and logs), so the record names the creating caller (a hash
  of the identity). A hang-up by anyone else, or for a call the service did
  not create, is a 404, the same answer as for an id that never existed;
- **supervision**: what the policy fixed (`fixed`: GA path -> value), the
  caller, when the call started and must end, and its live-call slot, so
  that any worker can take over a call whose supervisor died.

Records live in the shared store (process memory, or Redis so that any
replica can answer), and expire after `RECORD_TTL_S`, longer than any call
may last (`CALLS_MAX_SECONDS` is at most a day). `fixed` can hold the
operator's instructions: Redis holds them as it holds every other call
record, and nothing else shows them.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import orjson

from service.contract.calls import CallKind

RECORD_TTL_S = 26 * 3600


class RecordStore(Protocol):
    """Where records live: the limits store (`service.limits.Store`) satisfies it."""

    async def put(self, key: str, value: str, ttl_ms: int) -> None: ...

    async def get(self, key: str) -> str | None: ...

    async def delete(self, key: str) -> None: ...


def owner_of(identity: str) -> str:
    """The identity as records and usage keys hold it: a hash, no caller names in keys."""
    return hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()


@dataclass(slots=True)
class CallRecord:
    """One call the service created."""

    kind: CallKind
    call_id: str
    identity: str
    started_ms: int
    deadline_ms: int
    fixed: dict[str, Any] = field(default_factory=dict)
    """What the policy fixed, by GA path (`audio.output.voice`), as sent upstream."""
    slot: str | None = None
    """The caller's live-call slot member (`CALLS_MAX_CONCURRENT_PER_IDENTITY`), if any."""
    counted_seconds: float | None = None
    """GPT-Live's cumulative usage seconds already counted, written at a hand-over so the
    adopting worker counts on from there (None: unknown, after a crash)."""

    @property
    def owner(self) -> str:
        return owner_of(self.identity)

    @property
    def member(self) -> str:
        """The call as leases and logs name it: `kind:call_id`."""
        return f"{self.kind}:{self.call_id}"

    def dumps(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def loads(cls, raw: str) -> CallRecord | None:
        """The record, or None if it is not one (a foreign or older value)."""
        try:
            data = orjson.loads(raw)
            return cls(**data) if isinstance(data, dict) else None
        except (orjson.JSONDecodeError, TypeError):
            return None


class CallRecords:
    """Call (kind, id) -> `CallRecord`, in the shared store."""

    def __init__(self, store: RecordStore) -> None:
        self._store = store

    @staticmethod
    def _key(kind: CallKind, call_id: str) -> str:
        return f"rtp:call:{kind}:{call_id}"

    async def record(self, call: CallRecord) -> None:
        """Remember the call (`StoreUnavailable` if the store cannot)."""
        await self._store.put(self._key(call.kind, call.call_id), call.dumps(), RECORD_TTL_S * 1000)

    async def get(self, kind: CallKind, call_id: str) -> CallRecord | None:
        raw = await self._store.get(self._key(kind, call_id))
        return CallRecord.loads(raw) if raw is not None else None

    async def owned_by(self, kind: CallKind, call_id: str, identity: str) -> bool:
        """Whether `identity` created this call of this kind (and its record is alive)."""
        call = await self.get(kind, call_id)
        return call is not None and call.owner == owner_of(identity)

    async def forget(self, kind: CallKind, call_id: str) -> None:
        """Drop the record once the call ended: the id can end nothing any more."""
        await self._store.delete(self._key(kind, call_id))
