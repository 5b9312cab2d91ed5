r"""Terminal output: the live progress line of ``run`` and the aligned tables of ``runs``.

On a terminal the progress line is redrawn in place (``\r`` and erase-to-end-of-line), cut
to the terminal's width so it never wraps, and log lines are printed above it. Anywhere else
(a pipe, a file, CI) each update is a plain line, at most one a second, so a log stays short.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TextIO

from durably_web.models import Progress, Waiting

__all__ = [
    "ProgressLine",
    "format_elapsed",
    "format_local",
    "format_log",
    "format_progress",
    "format_table",
    "format_wait",
    "in_local_time",
]

_BAR_WIDTH = 24
_MIN_BAR_WIDTH = 10
_ERASE = "\r\x1b[K"
_LIVE_INTERVAL = 0.05
"""Seconds between two redraws of the live line (a fast job reports thousands a second)."""


def format_elapsed(seconds: float) -> str:
    """Format a duration as ``m:ss`` (or ``h:mm:ss`` from an hour on)."""
    whole = int(max(seconds, 0))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def in_local_time(value: datetime) -> datetime:
    """Return ``value`` in the local time zone, or as it is if that zone would pass 9999."""
    try:
        return value.astimezone()
    except (OverflowError, ValueError):
        return value


def format_local(value: datetime) -> str:
    """Format a time in the local time zone as ``YYYY-MM-DD HH:MM:SS``."""
    return in_local_time(value).strftime("%Y-%m-%d %H:%M:%S")


def format_wait(waiting: Waiting) -> str:
    """Say what a ``waiting`` run waits for, in local time.

    ``sleeping until 2026-01-01 10:00:00``; ``waiting for signal approval (times out
    2026-01-03 10:00:00)`` or ``(no timeout)``; ``retrying step fetch at 2026-01-01 10:05:00``.
    """
    until = "-" if waiting.until is None else format_local(waiting.until)
    if waiting.kind == "sleep":
        return f"sleeping until {until}"
    if waiting.kind == "signal":
        deadline = "no timeout" if waiting.until is None else f"times out {until}"
        return f"waiting for signal {waiting.name} ({deadline})"
    return f"retrying step {waiting.name} at {until}"


def format_progress(progress: Progress | None) -> str:
    """Format progress as ``current/total (pct%)``, ``current``, or ``-`` when unknown."""
    if progress is None:
        return "-"
    current = _number(progress.current)
    if progress.total is None:
        return current
    text = f"{current}/{_number(progress.total)}"
    if progress.total > 0:
        text += f" ({_percent(progress.current, progress.total)}%)"
    return text


def format_log(level: str, message: str, data: Any = None) -> str:
    """Format a log line as ``[level] message {data}`` (data as compact JSON, if any)."""
    line = f"[{level}] {message}"
    if data is not None:
        line += " " + json.dumps(data, ensure_ascii=False, separators=(", ", ": "), default=str)
    return line


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Lay rows out in left-aligned columns under a header line, two spaces apart.

    Args:
        headers: the column titles.
        rows: the cells, one sequence per row, as many as there are headers.

    Returns:
        The table as text, lines joined by newlines, without trailing spaces.

    """
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in (headers, *rows)
    ]
    return "\n".join(lines)


class ProgressLine:
    """Draws a run's progress, steps done and elapsed time; prints log lines around it.

    Args:
        out: where to write (normally ``sys.stdout``).
        live: redraw one line in place (a terminal) instead of printing plain lines.
        clock: a monotonic time source in seconds (tests pass a fake one).
        interval: the least time between two plain lines when not ``live``.

    """

    def __init__(
        self,
        out: TextIO,
        *,
        live: bool,
        clock: Callable[[], float] = time.monotonic,
        interval: float = 1.0,
    ) -> None:
        self.out = out
        self.live = live
        self.progress: Progress | None = None
        self.steps = 0
        self._clock = clock
        self._started = clock()
        self._interval = interval
        self._last_plain: float | None = None
        self._last_live: float | None = None
        self._last_drawn: str | None = None
        self._shown = False
        self._fill, self._empty = ("█", "░") if _can_encode(out, "█░") else ("#", "-")

    def text(self, width: int | None = None) -> str:
        """Return the progress line as it would be drawn now.

        Args:
            width: fit the line in this many columns: the bar (drawn only when live) is
                sized for it and the message cut to fit. ``None``: no limit.

        Returns:
            The line, without a newline.

        """
        progress = self.progress
        if progress is not None and progress.total:
            counts = (
                f"{_number(progress.current)}/{_number(progress.total)} "
                f"({_percent(progress.current, progress.total)}%)"
            )
        elif progress is not None:
            counts = _number(progress.current)
        else:
            counts = "no progress yet"
        message = None
        if progress is not None and progress.message:
            message = " ".join(progress.message.split())  # one line, whatever the job sent
        tail = f"{self.steps} step{'' if self.steps == 1 else 's'} done · " + format_elapsed(
            self._clock() - self._started
        )
        bar = ""
        if self.live and progress is not None and progress.total:
            # Sized by the terminal alone, so the bar does not jitter as the text changes.
            room = _BAR_WIDTH if width is None else (width - 40) // 2
            cells = min(max(room, _MIN_BAR_WIDTH), _BAR_WIDTH)
            ratio = min(max(progress.current / progress.total, 0.0), 1.0)
            filled = round(ratio * cells)
            bar = f"[{self._fill * filled}{self._empty * (cells - filled)}] "
        line = f"{bar}{counts} · {tail}"
        if message is not None:
            room = len(message) if width is None else width - len(line) - 3
            if room >= 4:
                cut = message if len(message) <= room else message[: room - 1] + "…"
                line = f"{bar}{counts} · {cut} · {tail}"
        if width is not None and len(line) > width > 0:
            line = line[: width - 1] + "…"
        return line

    def update(self, progress: Progress | None = None, *, steps: int | None = None) -> None:
        """Record new progress and/or steps done, and redraw (at most every so often)."""
        if progress is not None:
            self.progress = progress
        if steps is not None:
            self.steps = steps
        if not self.live and self.progress is None:
            return  # a plain line only once there is progress to show
        now = self._clock()
        last, interval = (
            (self._last_live, _LIVE_INTERVAL) if self.live else (self._last_plain, self._interval)
        )
        if last is None or now - last >= interval or self._at_end():
            self._draw(now)

    def tick(self) -> None:
        """Redraw the live line so its elapsed time moves on while nothing else happens."""
        if self.live:
            self._draw(self._clock())

    def message(self, line: str, stream: TextIO | None = None) -> None:
        """Print a line (a log, a notice) above the progress line, which is then redrawn.

        Args:
            line: the text, without a newline.
            stream: where to print it (default: where the progress line goes).

        """
        if self.live and self._shown:
            self.out.write(_ERASE)
            self.out.flush()
        target = stream or self.out
        target.write(line + "\n")
        target.flush()
        if self.live and self._shown:
            self._last_drawn = None
            self._draw(self._clock())

    def finish(self) -> None:
        """Draw the final state (unless a plain line already shows it) and end the line."""
        if self.live:
            if self._shown or self.progress is not None:
                self._draw(self._clock())
                self.out.write("\n")
        elif self.progress is not None and self._last_drawn != self.text():
            self._draw(self._clock())
        self._shown = False
        self._last_drawn = None
        self.out.flush()

    def _at_end(self) -> bool:
        progress = self.progress
        return (
            progress is not None
            and progress.total is not None
            and progress.current >= progress.total
        )

    def _draw(self, now: float) -> None:
        if not self.live:
            text = self.text()
            self._last_plain = now
            self._last_drawn = text
            self.out.write(text + "\n")
            self.out.flush()
            return
        self._last_live = now
        text = self.text(shutil.get_terminal_size().columns - 1)
        if text == self._last_drawn:
            return
        self._last_drawn = text
        self._shown = True
        self.out.write(_ERASE + text)
        self.out.flush()


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _percent(current: float, total: float) -> int:
    return int(min(max(current / total, 0.0), 1.0) * 100) if total > 0 else 0


def _can_encode(out: TextIO, text: str) -> bool:
    try:
        text.encode(getattr(out, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True
