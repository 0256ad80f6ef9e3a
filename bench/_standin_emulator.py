"""Stand-in upstream emulator for the benchmark (used with ``--emulator standin``).

It answers ``POST /v1/realtime/client_secrets`` the way the real upstream
does (``{"value": "ek_...", "expires_at": <unix>, "session": {...}}``),
optionally after sleeping ``--latency-ms``.  It exists so the harness can be
developed and run before ``python -m service emulator`` is available; the
runner prefers the real emulator whenever it is.

    python bench/_standin_emulator.py --host 127.0.0.1 --port 8081 --latency-ms 200
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from typing import Any

import orjson
from aiohttp import web

DEFAULT_SESSION: dict[str, Any] = {
    "type": "realtime",
    "object": "realtime.session",
    "model": "gpt-realtime-2",
    "output_modalities": ["audio"],
    "audio": {"output": {"voice": "alloy"}},
}
TTL_SECONDS = 60


def build_app(latency_ms: float) -> web.Application:
    delay = max(latency_ms, 0.0) / 1000.0

    async def client_secrets(request: web.Request) -> web.Response:
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return web.json_response(
                {"error": {"type": "invalid_request_error", "code": "missing_api_key"}},
                status=401,
                dumps=lambda o: orjson.dumps(o).decode(),
            )
        raw = await request.read()
        try:
            payload = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            return web.json_response(
                {"error": {"type": "invalid_request_error", "code": "invalid_json"}},
                status=400,
                dumps=lambda o: orjson.dumps(o).decode(),
            )
        requested = payload.get("session") if isinstance(payload, dict) else None
        session = dict(DEFAULT_SESSION)
        if isinstance(requested, dict):
            session.update(requested)
        session["id"] = "sess_" + secrets.token_hex(8)
        if delay:
            await asyncio.sleep(delay)
        now = int(time.time())
        body = {
            "value": "ek_emulator_" + secrets.token_hex(16),
            "expires_at": now + TTL_SECONDS,
            "session": session,
        }
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/realtime/client_secrets", client_secrets)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a project dependency
        loop = asyncio.new_event_loop()
    web.run_app(
        build_app(args.latency_ms),
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
        backlog=4096,
        loop=loop,
    )


if __name__ == "__main__":
    main()
