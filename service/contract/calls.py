"""The two kinds of call the service creates, and what a call id may look like.

A Realtime call (`POST /v1/realtime/calls`, id `rtc_…`) and a GPT-Live
session (`POST /v1/live/sessions`, id `sess_…`) differ in their paths and
sideband, not in how the service keeps them: both are a `CallKind`.
"""

from __future__ import annotations

import re
from typing import Literal, TypeAlias

CallKind: TypeAlias = Literal["realtime", "live"]

CALL_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
"""What a call id may look like (`rtc_…`, `sess_…`): it becomes part of URLs and keys."""
