"""Who is calling: caller authentication for each `AUTH_MODE`, and the caller's address.

`build_authenticator` picks the mode's authenticator at start-up; `identify`
runs it for one request and yields a `Caller` (or a 401); `identify_admin`
does the same for operators (`ADMIN_API_KEYS`).
"""

from service.auth.callers import Caller, caller_tag, client_ip
from service.auth.credentials import (
    Authenticator,
    build_authenticator,
    identify,
    identify_admin,
    new_api_key,
)

__all__ = [
    "Authenticator",
    "Caller",
    "build_authenticator",
    "caller_tag",
    "client_ip",
    "identify",
    "identify_admin",
    "new_api_key",
]
