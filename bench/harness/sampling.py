"""CPU time and memory of process trees and of the whole machine, read from /proc (Linux)."""

from __future__ import annotations

import math
import os
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")
_MAX_TREE = 4096  # bounds the walk if /proc is odd


def _status_kib(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants, via /proc/<pid>/task/*/children."""
    seen: list[int] = []
    todo = [root]
    while todo and len(seen) < _MAX_TREE:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.append(pid)
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as fh:
                    todo.extend(int(child) for child in fh.read().split())
            except (OSError, ValueError):
                continue
    return seen


def tree_rss_kib(root: int) -> int:
    """Summed VmRSS of a process tree."""
    return sum(_status_kib(pid, "VmRSS") for pid in process_tree(root))


def tree_hwm_kib(root: int) -> int:
    """Summed VmHWM (each process's own peak RSS) of a process tree."""
    return sum(_status_kib(pid, "VmHWM") for pid in process_tree(root))


def tree_cpu_s(root: int) -> float:
    """utime + stime of the live tree, in seconds."""
    total = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            continue
    return total / _TICKS


def machine_busy_s() -> float:
    """CPU seconds all cores have spent busy since boot (first line of /proc/stat)."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(v) for v in fh.readline().split()[1:9]]
    except (OSError, ValueError):
        return math.nan
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / _TICKS


def reaped_children_cpu_s() -> float:
    """CPU seconds of this process's reaped children (wrk, once it has returned)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds spent over one wall-clock interval, by who spent them."""

    wall_s: float
    peer_s: float
    emulator_s: float  # 0 when the emulator is the peer
    wrk_s: float
    other_s: float  # every other process on the machine, and the kernel's share

    def percent(self, seconds: float) -> float:
        """`seconds` of CPU as % of one core over the interval."""
        return 100.0 * seconds / self.wall_s if self.wall_s > 0 else math.nan


class CpuMeter:
    """Measures the CPU a peer, its emulator, wrk and everything else use over an interval."""

    def __init__(self, peer_pid: int, emulator_pid: int | None) -> None:
        self._peer = peer_pid
        self._emulator = emulator_pid

    def _read(self) -> tuple[float, float, float, float, float]:
        emulator = tree_cpu_s(self._emulator) if self._emulator is not None else 0.0
        return (
            time.monotonic(),
            tree_cpu_s(self._peer),
            emulator,
            reaped_children_cpu_s(),
            machine_busy_s(),
        )

    def __enter__(self) -> CpuMeter:
        self._before = self._read()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._after = self._read()

    @property
    def use(self) -> CpuUse:
        """What was spent between entering and leaving the `with` block."""
        wall, peer, emulator, wrk, busy = (
            a - b for a, b in zip(self._after, self._before, strict=True)
        )
        other = max(0.0, busy - peer - emulator - wrk)
        return CpuUse(max(wall, 1e-9), peer, emulator, wrk, other)


def busy_percent(interval_s: float) -> float:
    """CPU the whole machine uses over `interval_s`, as % of one core."""
    before, started = machine_busy_s(), time.monotonic()
    time.sleep(interval_s)
    return 100.0 * (machine_busy_s() - before) / max(time.monotonic() - started, 1e-9)


def wait_for_quiet(limit_percent: float, max_wait_s: float, interval_s: float = 0.5) -> float:
    """Wait (at most `max_wait_s`) until the machine uses under `limit_percent` of a core.

    Called while none of the row's processes run, so all of it is someone else's.
    Returns the last reading.
    """
    deadline = time.monotonic() + max_wait_s
    reading = busy_percent(interval_s)
    while reading > limit_percent and time.monotonic() < deadline:
        reading = busy_percent(interval_s)
    return reading


def wait_for_idle(
    root: int, max_wait_s: float, limit_percent: float = 5.0, interval_s: float = 0.2
) -> float:
    """Wait (at most `max_wait_s`) until a process tree uses under `limit_percent` of a core.

    A peer that fell behind keeps working through its backlog after wrk stops;
    that work must not land in the next peer's window. Returns the seconds waited
    (`max_wait_s` or more: it is still busy).
    """
    started = time.monotonic()
    while time.monotonic() - started < max_wait_s:
        before = tree_cpu_s(root)
        time.sleep(interval_s)
        if 100.0 * (tree_cpu_s(root) - before) / interval_s < limit_percent:
            break
    return time.monotonic() - started


class RssSampler:
    """Samples the summed VmRSS of a process tree every 100 ms in a thread.

    `root` gives the tree's root pid at each sample: it changes if the peer is restarted.
    """

    def __init__(self, root: Callable[[], int], interval_s: float = 0.1) -> None:
        self.root = root
        self.interval_s = interval_s
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, tree_rss_kib(self.root()))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        # VmHWM is the kernel's exact per-process peak: never report less.
        root = self.root()
        self.peak_kib = max(self.peak_kib, tree_rss_kib(root), tree_hwm_kib(root))
