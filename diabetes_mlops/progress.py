"""Progress of long work, on stderr: a live line on a terminal, one line per step in a log, else nothing.

Library code wraps a long wait or a multi-step job in ``task(label)`` and reports with ``update`` (a new
step or status) and ``advance`` (units done), which go to the innermost task open, so a helper deep in a
job reports its step without being handed the task. Nothing is printed until a program turns
progress on with ``configure``: the CLI does, except under ``--json``, so the Python API and machine
output stay quiet. On a terminal the task's line is redrawn in place (at most ten times a second); in a
log such as Jenkins' console, where a redrawn line would pile up, each step or status gets one line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

REDRAW_SECONDS = 0.1
_CLEAR = "\r\x1b[K"
_stream: TextIO | None = None
_open: list[Task] = []


def configure(enabled: bool, stream: TextIO | None = None) -> None:
    """Show progress from now on (on ``stream``, stderr by default), or stop showing it."""
    global _stream
    _stream = (stream or sys.stderr) if enabled else None


class Task:
    """One long piece of work as it goes: its current step or status, and units done out of a total."""

    def __init__(self, label: str, total: int | None, stream: TextIO | None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.status = ""
        self.started = time.monotonic()
        self._stream = stream
        self._live = bool(stream is not None and stream.isatty())
        self._drawn = 0.0
        self._write(f"{label} ..." if not self._live else None)

    def update(self, status: str) -> None:
        """A new step or status: one line in a log when it changes, the live line on a terminal."""
        if status == self.status:
            return
        self.status = status
        self._write(f"{self.label}: {status}" if not self._live else None, force=True)

    def advance(self, units: int = 1) -> None:
        """``units`` more of ``total`` done: shown on a terminal only, so a log does not get a line each."""
        self.done += units
        self._write(None)

    def finish(self, failed: bool = False) -> None:
        elapsed = time.monotonic() - self.started
        self._write(f"{self.label}: {'failed after' if failed else 'done in'} {elapsed:.1f} s", end=True)

    def _line(self) -> str:
        count = f" {self.done}/{self.total}" if self.total else (f" {self.done}" if self.done else "")
        status = f": {self.status}" if self.status else ""
        return f"{self.label}{status}{count} ({time.monotonic() - self.started:.0f} s)"

    def _write(self, line: str | None, force: bool = False, end: bool = False) -> None:
        if self._stream is None:
            return
        if not self._live:
            if line is not None:
                self._stream.write(line + "\n")
                self._stream.flush()
            return
        now = time.monotonic()
        if not (force or end) and now - self._drawn < REDRAW_SECONDS:
            return
        self._drawn = now
        self._stream.write(_CLEAR + (line + "\n" if end and line else self._line()))
        self._stream.flush()


@contextmanager
def task(label: str, total: int | None = None) -> Iterator[Task]:
    """Report a long piece of work; its last line says whether it finished or failed, and how long it took."""
    current = Task(label, total, _stream)
    _open.append(current)
    try:
        yield current
    except BaseException:
        current.finish(failed=True)
        raise
    else:
        current.finish()
    finally:
        _open.remove(current)


def update(status: str) -> None:
    """A new step or status of the innermost open task (nothing when no task is open)."""
    if _open:
        _open[-1].update(status)


def advance(units: int = 1) -> None:
    """``units`` more done in the innermost open task (nothing when no task is open)."""
    if _open:
        _open[-1].advance(units)
