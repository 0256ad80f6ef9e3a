"""Child processes in their own process groups, and waiting for them to answer."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .settings import HOST, REPO_DIR


class StartError(RuntimeError):
    """A peer (or the emulator) did not become ready."""


def free_port() -> int:
    """A TCP port on the loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# Every process started and not yet stopped, so an interrupt can stop them all.
_LIVE: list[Proc] = []


class Proc:
    """A child process in its own process group, logging to a file."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("wb")
        self.started = time.monotonic()
        try:
            self.popen = subprocess.Popen(  # noqa: S603 - a list argv, no shell: the harness's own
                cmd,
                cwd=REPO_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                # Its own group, so stopping it also stops the workers it forks.
                start_new_session=True,
            )
        except OSError:
            self._log.close()
            raise
        _LIVE.append(self)

    @property
    def pid(self) -> int:
        """The process id, which is also its process group id."""
        return self.popen.pid

    def alive(self) -> bool:
        """Whether the process has not exited."""
        return self.popen.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of its log, for failure reports."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM the group, SIGKILL it after `grace_s`, and close the log."""
        try:
            if self.alive():
                self._signal_group(signal.SIGTERM)
                try:
                    self.popen.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    self._signal_group(signal.SIGKILL)
                    self.popen.wait(timeout=grace_s)
            # Workers may outlive a parent that exited on its own.
            self._signal_group(signal.SIGKILL)
        finally:
            self._log.close()
            if self in _LIVE:
                _LIVE.remove(self)


def stop_all() -> None:
    """Stop every process this harness started that is still running."""
    for proc in list(_LIVE):
        proc.stop()


@dataclass(frozen=True)
class Probe:
    """The request that must answer 200 before a process counts as ready."""

    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _probe_status(port: int, probe: Probe, timeout_s: float = 2.0) -> int:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout_s)
    try:
        conn.request(probe.method, probe.path, body=probe.body, headers=probe.headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def wait_ready(proc: Proc, port: int, probe: Probe, timeout_s: float) -> float:
    """Poll until the probe answers 200; return the seconds since the process started."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if not proc.alive():
            raise StartError(
                f"{proc.name} exited with code {proc.popen.returncode} before it was ready"
                f"\n{proc.log_tail()}"
            )
        try:
            status = _probe_status(port, probe)
        except (OSError, http.client.HTTPException) as exc:
            last = type(exc).__name__
        else:
            if status == 200:
                return time.monotonic() - proc.started
            last = f"HTTP {status}"
        time.sleep(0.01)
    raise StartError(
        f"{proc.name} not ready after {timeout_s:.0f}s ({probe.method} {probe.path}: {last})"
        f"\n{proc.log_tail()}"
    )


class Server:
    """A server process on a fixed port that the harness can start again.

    On a shared machine something else may stop our processes (a broad
    `pkill -f "python -m service"` in another session, say); a row then
    restarts its peer on the same port instead of losing its figures.
    """

    def __init__(
        self,
        name: str,
        command: list[str],
        env: dict[str, str],
        port: int,
        probe: Probe,
        log_path: Path,
    ) -> None:
        self.name = name
        self.port = port
        self.restarts = 0
        self._command, self._env, self._probe, self._log_path = command, env, probe, log_path
        self._proc: Proc | None = None

    @property
    def proc(self) -> Proc:
        """The current process; `start` first."""
        if self._proc is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._proc

    def current_pid(self) -> int:
        """The pid of the current process (it changes when the server is restarted)."""
        return self.proc.pid

    def start(self, ready_timeout_s: float) -> float:
        """Start the process and wait for it; seconds to ready, StartError if it is not."""
        log = self._log_path
        if self._proc is not None:
            log = log.with_name(f"{log.stem}.restart{self.restarts}{log.suffix}")
        self._proc = Proc(self.name, self._command, self._env, log)
        try:
            return wait_ready(self._proc, self.port, self._probe, ready_timeout_s)
        except StartError:
            self._proc.stop()
            raise

    def revive(self, ready_timeout_s: float) -> str | None:
        """Start it again if it exited; what happened, for the report, or None if it ran."""
        proc = self.proc
        if proc.alive():
            return None
        code = proc.popen.returncode
        self.restart(ready_timeout_s)
        return f"{self.name} exited unasked (code {code}) and was restarted"

    def restart(self, ready_timeout_s: float) -> float:
        """Stop the current process and start a new one on the same port."""
        self.proc.stop()
        self.restarts += 1
        return self.start(ready_timeout_s)

    def stop(self) -> None:
        """Stop the current process, if any."""
        if self._proc is not None:
            self._proc.stop()
