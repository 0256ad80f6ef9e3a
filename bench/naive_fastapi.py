"""Benchmark peer (c): the naive FastAPI token route.

This is what a first-draft FastAPI proxy usually looks like: one route that
opens a brand-new ``httpx.AsyncClient()`` for every request (new connection
pool, new TLS context, new TCP connection to the upstream each time) and
forwards the caller's JSON body to ``{OPENAI_BASE_URL}/realtime/client_secrets``.
No auth, no policy, no validation.  Run it with one uvicorn worker:

    OPENAI_BASE_URL=http://127.0.0.1:8081/v1 OPENAI_API_KEY=sk-... \
        uvicorn naive_fastapi:app --app-dir bench --port 8083 --workers 1
"""

from __future__ import annotations

import os

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

OPENAI_BASE_URL = os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1").rstrip("/")
OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY", "")

app = FastAPI()


@app.post("/v1/realtime/client_secrets")
async def client_secrets(request: Request) -> JSONResponse:
    body = await request.body()
    async with httpx.AsyncClient() as client:
        upstream = await client.post(
            f"{OPENAI_BASE_URL}/realtime/client_secrets",
            content=body,
            headers={
                "Authorization": f"Bearer {OPENAI_API_KEY}",
                "Content-Type": "application/json",
            },
        )
    return JSONResponse(upstream.json(), status_code=upstream.status_code)
