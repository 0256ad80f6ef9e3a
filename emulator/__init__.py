"""A stand-in for OpenAI's Realtime and GPT-Live APIs, for development, tests and benchmarks.

NOT OpenAI: its client secrets are fake (`ek_emulator_…`) and open nothing.
It answers what the service asks of OpenAI (client secrets, server-created
calls, their hang-ups and sidebands) as strictly as OpenAI does, so a test
against it can catch a contract error in the service. Like OpenAI, it shares
no code with the service: nothing here imports `service`.

`create_emulator()` builds the ASGI app (`Emulator`); `Emulator.sideband()`
is its in-process sideband, for a service that runs it in the same process.
"""

from emulator.app import Emulator, create_emulator
from emulator.calls.events import TRANSCRIPT, CallKind

__all__ = ["TRANSCRIPT", "CallKind", "Emulator", "create_emulator"]
