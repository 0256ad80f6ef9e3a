"""Who is calling, and from where: the parts of a request every auth mode reads.

`Caller` is what authentication produces. The address is the peer's, or
behind `TRUSTED_PROXIES` the first untrusted `X-Forwarded-For` hop, so
per-IP limits count the client, not the gateway.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any

from service.errors import Unauthenticated

Networks = tuple[IPv4Network | IPv6Network, ...]


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: who, what selects their profile, and from where."""

    identity: str
    ip: str
    claim: str | None = None


def trusted(address: str, networks: Networks) -> bool:
    """Whether `address` is inside one of the trusted proxy networks."""
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(scope: MutableMapping[str, Any], networks: Networks) -> str:
    """The caller's address: the peer, or behind trusted proxies the first untrusted hop."""
    peer = scope["client"][0] if scope.get("client") else "unknown"
    if not networks or not trusted(peer, networks):
        return str(peer)
    forwarded = header(scope, b"x-forwarded-for")
    hops = [hop.strip() for hop in forwarded.split(",")] if forwarded else []
    for hop in reversed(hops):
        if hop and not trusted(hop, networks):
            return hop
    return str(peer)


def header(scope: MutableMapping[str, Any], name: bytes) -> str | None:
    """The first value of a request header (latin-1, as HTTP defines it)."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def bearer_token(scope: MutableMapping[str, Any]) -> str | None:
    """The `Authorization: Bearer` credential, if any."""
    value = header(scope, b"authorization")
    if value and value[:7].lower() == "bearer ":
        return value[7:].strip() or None
    return None


def unauthenticated(message: str, error: str | None = None) -> Unauthenticated:
    """A 401 whose WWW-Authenticate tells clients how to authenticate."""
    challenge = 'Bearer realm="realtime-token-proxy"'
    if error:
        challenge += f', error="{error}"'
    return Unauthenticated(message, headers={"WWW-Authenticate": challenge})
