"""The emulator's outgoing audio: a 440 Hz tone for a second, then silence.

Enough for a browser's `ontrack` to fire and its audio element to play
something audible; aiortc encodes the frames (Opus or G.711, as negotiated).
Frames are 20 ms of 48 kHz mono signed 16-bit PCM, paced on the wall clock the
way aiortc's own `AudioStreamTrack` paces them.
"""

from __future__ import annotations

import array
import asyncio
import fractions
import math
import time

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

SAMPLE_RATE = 48_000
FRAME_SAMPLES = SAMPLE_RATE // 50  # 20 ms, WebRTC's usual packet time
TONE_HZ = 440.0
TONE_FRAMES = 50  # one second
AMPLITUDE = 0.25 * 32767
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)


def _tone_frames() -> list[bytes]:
    """One second of the tone, cut in frames, computed once per process."""
    samples = array.array(
        "h",
        (
            round(AMPLITUDE * math.sin(2 * math.pi * TONE_HZ * n / SAMPLE_RATE))
            for n in range(FRAME_SAMPLES * TONE_FRAMES)
        ),
    )
    pcm = samples.tobytes()
    size = FRAME_SAMPLES * 2
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


TONE = _tone_frames()
SILENCE = bytes(FRAME_SAMPLES * 2)


class ToneTrack(MediaStreamTrack):
    """An audio track playing the tone once, then silence until stopped."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._start: float | None = None
        self.frames_sent = 0

    async def recv(self) -> AudioFrame:
        """The next 20 ms frame, on time."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            due = self._start + self.frames_sent * FRAME_SAMPLES / SAMPLE_RATE
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        pcm = TONE[self.frames_sent] if self.frames_sent < len(TONE) else SILENCE
        frame = AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(pcm)
        frame.pts = self.frames_sent * FRAME_SAMPLES
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = TIME_BASE
        self.frames_sent += 1
        return frame
