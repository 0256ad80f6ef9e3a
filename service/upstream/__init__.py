"""OpenAI, as the service reaches it: one HTTP client per process, and a built-in emulator.

`Upstream` mints client secrets and turns every upstream failure into the
service's errors; `build_http_client` makes the one `httpx.AsyncClient` it
runs on. The emulator (`service.upstream.emulator`) stands in for OpenAI in
development and benchmarks.
"""

from service.upstream.client import Minted, Upstream
from service.upstream.connect import connect_upstream
from service.upstream.http import build_http_client

__all__ = ["Minted", "Upstream", "build_http_client", "connect_upstream"]
