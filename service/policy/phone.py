"""Phone lines: which profile answers a dialled number, and as which kind of call.

The profiles file's `[phone]` table maps E.164 numbers (the `To` of the SIP
INVITE) to a line::

    [phone."+15551234567"]
    profile = "support"              # a profile of the same file, or "default"
    kind = "realtime"                # which webhook the service accepts: realtime | live
    transfer_targets = ["tel:+15557654321", "sip:desk@pbx.example.com"]

Validated at start-up: a number that is not E.164, a profile that does not
exist, an unknown kind or a target that is neither `tel:` nor `sip:` fails
the start, naming the number. The `From` header is never looked up here: it
is the caller's untrusted hint, and selects nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

E164 = re.compile(r"\+[1-9][0-9]{1,14}")
"""ITU-T E.164, as SIP carries it in `tel:` and `sip:` URIs."""
LineKind = Literal["realtime", "live"]
TARGET = re.compile(r"(tel:\+[1-9][0-9]{1,14}|sips?:[^\s<>\"]{3,255})")


@dataclass(frozen=True, slots=True)
class PhoneLine:
    """One dialled number: the profile that answers it, its kind, where it may transfer."""

    number: str
    profile: str
    kind: LineKind = "realtime"
    transfer_targets: tuple[str, ...] = ()


def load_lines(table: object, profiles: set[str]) -> dict[str, PhoneLine]:
    """The `[phone]` table, validated; errors name the number and the field."""
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise ValueError("phone must be a table of numbers")
    lines: dict[str, PhoneLine] = {}
    for number, entry in table.items():
        lines[str(number)] = _line(str(number), entry, profiles)
    return lines


def _line(number: str, entry: object, profiles: set[str]) -> PhoneLine:
    where = f'phone."{number}"'
    if not E164.fullmatch(number):
        raise ValueError(f"{where}: not an E.164 number (+ and up to 15 digits)")
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: must be a table (profile, kind, transfer_targets)")
    data = cast(dict[str, Any], entry)
    unknown = set(data) - {"profile", "kind", "transfer_targets"}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    profile = data.get("profile")
    if not isinstance(profile, str) or profile not in profiles:
        raise ValueError(f"{where}.profile: '{profile}' is not a profile of this file")
    kind = data.get("kind", "realtime")
    if kind not in get_args(LineKind):
        raise ValueError(f"{where}.kind: '{kind}' is neither realtime nor live")
    targets = data.get("transfer_targets", [])
    if not isinstance(targets, list) or not all(
        isinstance(t, str) and TARGET.fullmatch(t) for t in targets
    ):
        raise ValueError(f"{where}.transfer_targets: each must be a tel:+E.164 or sip: URI")
    return PhoneLine(number, profile, cast(LineKind, kind), tuple(targets))


SIP_NUMBER = re.compile(r"(?:sips?:|tel:)(\+?[0-9]{2,15})(?=[@;>]|$)")


def dialled_number(header: str) -> str | None:
    """The E.164 number of a `To`/`From` header (`<sip:+15551234567@host>;tag=...`), if any.

    A number without its `+` (as some trunks send it) is read as E.164.
    """
    found = SIP_NUMBER.search(header)
    if found is None:
        return None
    digits = found.group(1)
    number = digits if digits.startswith("+") else f"+{digits}"
    return number if E164.fullmatch(number) else None


def line_key(number: str) -> str:
    """A number as logs, keys and call records name it: a hash, never the number."""
    return hashlib.blake2b(number.encode(), digest_size=8).hexdigest()
