"""The ASGI entry point uvicorn imports in each worker process.

Settings are loaded here, in the worker, so every worker validates the same
environment; `python -m service` has already validated it once for a clean
start-up error.
"""

from __future__ import annotations

from service.app import create_app
from service.config import load_settings
from service.logs import configure

settings = load_settings()
configure(settings.log_format, settings.log_level)
app = create_app(settings)
