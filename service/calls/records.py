"""Who created which call: the record a hang-up is checked against.

A call id alone must not let anyone end a call: ids travel through browsers
and logs. When the service creates a call it records the call's kind, a hash
of the creating caller's identity and the time, in the shared store (process
memory, or Redis so that any replica can answer the hang-up). A hang-up by
anyone else, or for a call the service did not create, is a 404, the same
answer as for an id that never existed, so ids cannot be probed.

Records expire after `RECORD_TTL_S`, longer than any call OpenAI keeps open
(a Realtime session lasts at most 60 minutes).
"""

from __future__ import annotations

import hashlib
import time
from typing import Literal, Protocol, TypeAlias

import orjson

CallKind: TypeAlias = Literal["realtime", "live"]
RECORD_TTL_S = 3 * 3600


class RecordStore(Protocol):
    """Where records live: the limits store (`service.limits.Store`) satisfies it."""

    async def put(self, key: str, value: str, ttl_ms: int) -> None: ...

    async def get(self, key: str) -> str | None: ...

    async def delete(self, key: str) -> None: ...


def _owner(identity: str) -> str:
    """The identity as the record keeps it: a hash, so the store holds no caller names."""
    return hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()


class CallRecords:
    """Call id -> (kind, owner, created at), in the limits store."""

    def __init__(self, store: RecordStore) -> None:
        self._store = store

    @staticmethod
    def _key(kind: CallKind, call_id: str) -> str:
        return f"rtp:call:{kind}:{call_id}"

    async def record(self, kind: CallKind, call_id: str, identity: str) -> None:
        """Remember that `identity` created this call (`StoreUnavailable` if it cannot)."""
        value = orjson.dumps({"owner": _owner(identity), "created_at": int(time.time())})
        await self._store.put(self._key(kind, call_id), value.decode(), RECORD_TTL_S * 1000)

    async def owned_by(self, kind: CallKind, call_id: str, identity: str) -> bool:
        """Whether `identity` created this call of this kind (and its record is alive)."""
        raw = await self._store.get(self._key(kind, call_id))
        if raw is None:
            return False
        try:
            owner = orjson.loads(raw).get("owner")
        except (orjson.JSONDecodeError, AttributeError):
            return False
        return isinstance(owner, str) and owner == _owner(identity)

    async def forget(self, kind: CallKind, call_id: str) -> None:
        """Drop the record once the call is hung up: the id can end nothing any more."""
        await self._store.delete(self._key(kind, call_id))
