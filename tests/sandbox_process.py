"""``ivs-sandbox`` in a real process, read the way a user reads it: the lines it prints up to ``ready``.

Tests configure boto3, the AWS CLI and workshop attendees only from those lines: the ``export``
lines (the presenter's shell), the endpoints, and in workshop mode the ``url:``, ``room code:`` and
``fingerprint:`` lines the presenter shares. Waiting for the ready line, never for a delay, is what
keeps process tests deterministic.
"""

from __future__ import annotations

import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ivs_widgets.cli import READY

#: Longest wait for the ready line: a cold start imports boto3 and, in workshop mode, makes a certificate.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
#: The console script pip installed next to this interpreter (what a user types).
IVS_SANDBOX = str(Path(sys.executable).with_name("ivs-sandbox"))


class Running:
    """A started ``ivs-sandbox`` process and what it printed up to its ready line.

    ``stderr_path`` appends the process's stderr to a file instead of a pipe: a process that is
    killed and started again (a crash test) keeps one log.
    """

    def __init__(self, command: list[str], *, env: dict[str, str] | None = None,
                 stderr_path: Path | None = None, preexec_fn: Callable[[], None] | None = None) -> None:
        self._stderr_path = stderr_path
        if stderr_path is None:
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                            env=env, preexec_fn=preexec_fn)
        else:
            with open(stderr_path, "a") as stderr:
                self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env,
                                                preexec_fn=preexec_fn)
        self._lines: queue.Queue[str | None] = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(target=_pump, args=(self.process.stdout, self._lines), daemon=True).start()
        try:
            self.printed = self._read_until_ready()
        except BaseException:
            self.kill()
            raise
        #: The ``export NAME=value`` lines, as a fresh shell would apply them.
        self.environment = dict(_parse_export(line) for line in self.printed if line.startswith("export "))

    def value(self, label: str) -> str:
        """What follows ``label:`` on the printed line that starts with ``label`` (``url``, ``room code`` …)."""
        for line in self.printed:
            if line.startswith(label) and ":" in line:
                return line.partition(":")[2].strip()
        raise AssertionError(f"ivs-sandbox printed no {label!r} line: {self.printed}")

    def next_line(self, timeout: float = START_TIMEOUT) -> str:
        """The next line printed after the ready line (what the sandbox announces later)."""
        line = self._lines.get(timeout=timeout)
        if line is None:
            raise AssertionError(f"ivs-sandbox exited: {self.stderr()}")
        return line

    @property
    def control_endpoint(self) -> str:
        return self.value("control plane")

    @property
    def messaging_endpoint(self) -> str:
        return self.value("messaging")

    # -- workshop mode: the three lines the presenter shares ---------------------------------
    @property
    def url(self) -> str:
        return self.value("url")

    @property
    def room_code(self) -> str:
        return self.value("room code")

    @property
    def fingerprint(self) -> str:
        return self.value("fingerprint")

    # -- ending ------------------------------------------------------------------------------
    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send ``signum`` (an orderly stop by default) and return the exit status."""
        self.process.send_signal(signum)
        return self.process.wait(timeout=STOP_TIMEOUT)

    def stderr(self) -> str:
        """Everything the process wrote to stderr, once it has exited."""
        self.process.wait(timeout=STOP_TIMEOUT)
        if self._stderr_path is not None:
            return self._stderr_path.read_text()
        assert self.process.stderr is not None
        return self.process.stderr.read()

    def kill(self) -> None:
        """SIGKILL, if still running: the kernel drops every connection and no close frame is sent."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=STOP_TIMEOUT)

    def _read_until_ready(self) -> list[str]:
        printed: list[str] = []
        while True:
            try:
                line = self._lines.get(timeout=START_TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"no ready line within {START_TIMEOUT} s: {printed}") from None
            if line is None:
                raise AssertionError(f"ivs-sandbox exited before it was ready: {printed} {self.stderr()}")
            printed.append(line)
            if line.startswith(READY):
                return printed


def shell_environment(exports: dict[str, str], workdir: Path) -> dict[str, str]:
    """This process's environment with no AWS setting of its own, plus ``exports``: a fresh shell
    in which the user pasted the printed lines. ``workdir`` holds the (absent) AWS config files."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(workdir / "no-config"), AWS_SHARED_CREDENTIALS_FILE=str(workdir / "no-credentials"))
    return {**env, **exports}


def _pump(stdout: IO[str], lines: queue.Queue[str | None]) -> None:
    with stdout:  # read to the end, so the process never blocks on a full pipe
        for line in stdout:
            lines.put(line.rstrip("\n"))
    lines.put(None)


def _parse_export(line: str) -> tuple[str, str]:
    name, _, value = shlex.split(line.removeprefix("export "))[0].partition("=")
    return name, value
