"""Who is calling, and from where: the parts of a request every auth mode reads.

`Caller` is what authentication produces. The address is the peer's, or
behind `TRUSTED_PROXIES` the first untrusted `X-Forwarded-For` hop, so
per-IP limits count the client, not the gateway.
"""

from __future__ import annotations

import hashlib
from collections.abc import MutableMapping
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any

from service.core.errors import Unauthenticated

Networks = tuple[IPv4Network | IPv6Network, ...]


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: who, what selects their profile, and from where."""

    identity: str
    ip: str
    claim: str | None = None


def caller_tag(caller: Caller, hashed: bool) -> str:
    """The caller as OpenAI (trace metadata, `safety_identifier`) and call records name it:
    the identity, or with AUTH_HASH_IDENTITIES a hash of it."""
    if hashed:
        return hashlib.sha256(caller.identity.encode()).hexdigest()[:32]
    return caller.identity


def trusted(address: str, networks: Networks) -> bool:
    """Whether `address` is inside one of the trusted proxy networks."""
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(scope: MutableMapping[str, Any], networks: Networks) -> str:
    """The caller's address: the peer, or behind trusted proxies the first untrusted hop.

    Every `X-Forwarded-For` line counts, in order (a proxy may append its own
    line rather than extend the client's), and the hops are walked from the
    right: each trusted proxy vouches for the hop before it. Walking stops at
    the first untrusted address, which is the client, or at a hop that is not
    an IP address at all, which no proxy wrote: the last believed hop stands.
    """
    peer = scope["client"][0] if scope.get("client") else "unknown"
    if not networks or not trusted(peer, networks):
        return str(peer)
    hops = [hop.strip() for line in headers(scope, b"x-forwarded-for") for hop in line.split(",")]
    address = str(peer)
    for hop in reversed(hops):
        try:
            ip = ip_address(hop)
        except ValueError:
            break
        address = str(ip)
        if not any(ip in network for network in networks):
            break
    return address


def headers(scope: MutableMapping[str, Any], name: bytes) -> list[str]:
    """Every value of a request header, in order (latin-1, as HTTP defines it)."""
    return [value.decode("latin-1") for key, value in scope["headers"] if key == name]


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
