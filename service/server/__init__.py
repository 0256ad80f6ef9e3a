"""The composition root: the process's entry points, and the HTTP server's own limits.

`run` serves (`python -m service`), `asgi` is what each uvicorn worker
imports, `protocol` bounds request heads, read times and connections, and
`compose` decides what the app talks to (OpenAI, or the built-in emulator).
Only this package imports the emulator.
"""
