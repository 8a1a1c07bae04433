"""One injectable clock for all waiting and all "now".

Production uses the system clock. Tests and local mode install a :class:`VirtualClock` that the Atlas
simulator, the Atlas client's back-off, the handlers and moto's Wait/Retry states all share, so a
30-minute restore runs in a second and no test ever sleeps for real.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class VirtualClock:
    """A clock that only moves when something sleeps on it (or calls :meth:`advance`)."""

    def __init__(self, start: float | datetime | None = None) -> None:
        if isinstance(start, datetime):
            start = start.timestamp()
        self._now = float(start if start is not None else datetime(2026, 11, 1, 2, 0, tzinfo=UTC).timestamp())
        self._lock = threading.Lock()
        self.slept: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        seconds = max(0.0, float(seconds))
        with self._lock:
            self._now += seconds
            self.slept.append(seconds)


_current: Clock = SystemClock()


def current() -> Clock:
    return _current


def use(clock: Clock) -> Clock:
    """Install ``clock`` process-wide; returns the previous one so callers can restore it."""
    global _current
    previous, _current = _current, clock
    return previous


def seconds() -> float:
    """Now on the installed clock, in seconds since the epoch."""
    return _current.now()


def sleep(seconds: float) -> None:
    """Wait on the installed clock (offline: while others work, local/conductor.py)."""
    _current.sleep(seconds)


def utcnow() -> datetime:
    return datetime.fromtimestamp(_current.now(), tz=UTC)


def isoformat(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, the way Atlas writes dates: the one date format of records, answers,
    messages and events."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def parse_iso(text: str) -> datetime:
    """The inverse of :func:`isoformat` (any ISO 8601 date-time; naive means UTC). ValueError if not one."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
