"""How the environment's text becomes typed values: lists, rates, key entries, pairs, Redis URLs.

`Settings` (`service.config`) and the `Policy` it holds declare the
variables; these readers turn each one's text into a value or a `ValueError`
that names what was expected, never echoing the input (a URL or key entry may
hold a secret).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Annotated, TypeAlias
from urllib.parse import parse_qsl, unquote

from pydantic import BeforeValidator
from pydantic_settings import NoDecode


def csv_items(text: str) -> tuple[str, ...]:
    """`a, b ,,c` -> `("a", "b", "c")`: how every comma-separated env value is read."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def split_csv(value: object) -> object:
    """Read `a, b ,c` from env as `("a", "b", "c")`; leave lists from files alone."""
    return csv_items(value) if isinstance(value, str) else value


CsvStr: TypeAlias = Annotated[tuple[str, ...], NoDecode, BeforeValidator(split_csv)]
"""A comma-separated env list (NoDecode: pydantic-settings must not read it as JSON)."""


def available_cpus() -> int:
    """CPUs this process may run on (a container's quota, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class Rate:
    """`count` events per `period` seconds, written `N/second|minute|hour|day`."""

    count: int
    period: int

    def __str__(self) -> str:
        unit = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}[self.period]
        return f"{self.count}/{unit}"


PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def upper_case(value: object) -> object:
    """`info` means `INFO`: log levels are case-insensitive, as uvicorn's are."""
    return value.upper() if isinstance(value, str) else value


def parse_rate(value: object) -> object:
    """Read `RATE_LIMIT_*` as `N/unit`; `off` means no limit."""
    if value is None or isinstance(value, Rate):
        return value
    text = str(value).strip().lower()
    if not text or text == "off":
        return None
    count, _, unit = text.partition("/")
    if not count.isdigit() or int(count) < 1 or unit.rstrip("s") not in PERIODS:
        raise ValueError("expected N/second, N/minute, N/hour or N/day with N >= 1")
    return Rate(int(count), PERIODS[unit.rstrip("s")])


def parse_key_entries(value: object) -> object:
    """Read `AUTH_API_KEYS` as `name:sha256hex,...`; plaintext keys are refused."""
    if not isinstance(value, str):
        return value
    entries: dict[str, str] = {}
    for item in csv_items(value):
        name, _, digest = item.partition(":")
        digest = digest.strip().lower()
        if (
            not name.strip()
            or len(digest) != 64
            or any(c not in "0123456789abcdef" for c in digest)
        ):
            raise ValueError(
                "expected name:sha256hex entries (hashes only; `python -m service hash-key`)"
            )
        entries[name.strip()] = digest
    return entries


def parse_pairs(value: object) -> object:
    """Read `a=b,c=d` from env as `{"a": "b", "c": "d"}`."""
    if isinstance(value, str):
        pairs = [item.split("=", 1) for item in csv_items(value)]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError("expected name=value pairs separated by commas")
        return {name.strip(): target.strip() for name, target in pairs}
    return value


MICRO_DOLLAR = Decimal("0.000001")


def parse_usd(value: object) -> object:
    """Read a dollar amount (`5`, `0.25`, `$1.50`) as a Decimal of at most six decimals
    (a micro-dollar, the unit budgets count in); `off` or empty means none."""
    if value is None or isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("expected a dollar amount such as 5 or 0.25")
    text = str(value).strip().removeprefix("$").strip()
    if not text or text.lower() == "off":
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError("expected a dollar amount such as 5 or 0.25") from None
    if not amount.is_finite() or amount <= 0:
        raise ValueError("expected a positive dollar amount")
    if amount != amount.quantize(MICRO_DOLLAR):
        raise ValueError("at most six decimals: budgets count whole micro-dollars")
    return amount


Usd: TypeAlias = Annotated[Decimal | None, BeforeValidator(parse_usd)]
"""A positive dollar amount of at most six decimals, or none (`off`, empty, unset)."""


def micro_dollars(amount: Decimal) -> int:
    """A `Usd` amount in whole micro-dollars (exact: it has at most six decimals)."""
    return int(amount / MICRO_DOLLAR)


SENTINEL_SCHEMES = ("redis+sentinel://", "rediss+sentinel://")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://", *SENTINEL_SCHEMES)


@dataclass(frozen=True, slots=True)
class SentinelUrl:
    """`REDIS_URL` in Sentinel form: the sentinels, the master they watch, how to reach it."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)


def parse_sentinel_url(url: str) -> SentinelUrl:
    """Read `redis[s]+sentinel://[[user]:password@]host:port[,host:port...]/master[/db]`.

    The password is the master's (and its replicas'); sentinels that require
    their own get `?sentinel_password=`. `rediss+sentinel` speaks TLS to the
    sentinels and the master alike, trusting `?ssl_ca_certs=<file>` if given,
    else the system's CAs.
    """
    scheme, _, rest = url.partition("://")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, _, hosts = netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    sentinels = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected host:port for each sentinel, comma-separated")
        sentinels.append((host.strip("[]"), int(port)))
    master, _, db = path.strip("/").partition("/")
    if not master or (db and not db.isdigit()):
        raise ValueError("expected the master's name after the sentinels, then an optional db")
    options = dict(parse_qsl(query, keep_blank_values=True))
    if set(options) - {"ssl_ca_certs", "sentinel_password"}:
        raise ValueError("a Sentinel URL takes only ssl_ca_certs and sentinel_password")
    return SentinelUrl(
        sentinels=tuple(sentinels),
        master=unquote(master),
        db=int(db or 0),
        username=unquote(username) or None,
        password=unquote(password) or None,
        tls=scheme == "rediss+sentinel",
        ca_file=options.get("ssl_ca_certs"),
        sentinel_password=options.get("sentinel_password"),
    )


def check_redis_url(url: str | None) -> str | None:
    """Refuse at start-up a REDIS_URL the store could not use (never echoing it: a password)."""
    if not url:
        return None
    if not url.startswith(REDIS_SCHEMES):
        raise ValueError(
            "expected redis://, rediss://, unix://, redis+sentinel:// or rediss+sentinel:// "
            "(Redis Cluster is not supported)"
        )
    if "retry_on_timeout" in dict(parse_qsl(url.partition("?")[2])):
        raise ValueError("retry_on_timeout is refused: a timed-out mint may have been counted")
    if url.startswith(SENTINEL_SCHEMES):
        target = parse_sentinel_url(url)
        if target.ca_file and not target.tls:
            raise ValueError("ssl_ca_certs needs rediss+sentinel:// (TLS)")
        return url
    from redis.asyncio.connection import parse_url  # redis-py: only imported when used

    try:
        parse_url(url)
    except ValueError:
        raise ValueError("redis-py cannot read this URL (host, port or db)") from None
    return url
