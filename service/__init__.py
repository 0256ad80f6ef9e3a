"""realtime-token-proxy: mints OpenAI Realtime client secrets under a server-side policy.

The public surface is `create_app` and `Settings`. The subpackages follow a
request's path: `api` (the HTTP edge), `auth` (who is calling), `contract`
(the request shapes), `policy` (what ops allow), `limits` (how often),
`upstream` (OpenAI, or its emulator).
"""

from service.api import create_app
from service.config import Settings

__all__ = ["Settings", "create_app"]
