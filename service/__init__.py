"""realtime-token-proxy: mints OpenAI Realtime client secrets under a server-side policy.

The public surface is `create_app` and `Settings`; everything else is an
implementation module named after its step on the request's path.
"""

from service.app import create_app
from service.config import Settings

__all__ = ["Settings", "create_app"]
