"""realtime-token-proxy: OpenAI voice sessions for callers who never see the API key.

The public surface is `create_app` and `Settings`. The packages, each above
the ones it imports (docs/development.md's layout; `make lint` checks the order):
`server` (the composition root), `api` (the HTTP edge), `sessions` (the
flows), `calls` (supervision), `auth` and `limits`, `upstream` (OpenAI) and
`store` (the shared state), `config`, `policy`, `contract`, `core`.
"""

from service.api import create_app
from service.config import Settings

__all__ = ["Settings", "create_app"]
