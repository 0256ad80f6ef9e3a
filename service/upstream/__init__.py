"""OpenAI, as the service reaches it: one HTTP client per process, and call sidebands.

`Upstream` mints client secrets and creates and ends calls, turning every
upstream failure into the service's errors; `build_http_client` makes the
one `httpx.AsyncClient` it runs on; `WebSocketSideband` attaches to calls.
Nothing here stands in for OpenAI: the emulator is its own package.
"""

from service.upstream.client import Minted, Upstream
from service.upstream.http import build_http_client

__all__ = ["Minted", "Upstream", "build_http_client"]
