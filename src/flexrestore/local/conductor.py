"""Discrete-event time for the offline stack: the virtual clock moves only when every participant is waiting.

On one shared virtual clock, a sleep that simply advances the clock adds up across threads: two restores
each waiting 50 s would move the clock 100 s, and a fleet run's restores would inflate each other's RTO. Here
a sleep registers a wake-up time and waits; the clock jumps to the earliest wake-up once no participant is
busy, so concurrent waits overlap the way they do in real time, and time never moves under a handler that
is still at work.

Participants are the threads that do the simulated work: a handler called through ``OfflineStack.invoke``,
and the threads moto's state-machine interpreter runs states in (registered by the harness where it starts
them: :meth:`Conductor.start_thread`, :meth:`Conductor.thread_class`). A participant that waits for another
thread (a program for its states, a task for its work or its task token, a Map state for its iterations)
waits on an event (:meth:`Conductor.wait_event`): idle while it waits, busy again the moment the event is
set, so the clock never moves in the gap before it wakes, and its timeout runs on the clock. A thread that
is no participant (a test, the simulator's server) advances the clock at once when it sleeps.

If a busy participant stays silent for ``stall_seconds`` of real time while others wait, the clock moves
anyway (a thread blocked somewhere unexpected must not hang a test); ``stalls`` counts how often.

Lambda timeouts live here too: while a thread runs an invocation with a deadline, a sleep that would reach
past it advances the clock to the deadline and raises :class:`Stopped` (a BaseException, like Lambda
stopping a function: no ``except Exception`` can swallow it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flexrestore import clock as clock_module


class Stopped(BaseException):
    """Raised inside handler code at the moment its invocation times out."""


class Conductor:
    def __init__(self, inner: clock_module.Clock, *, stall_seconds: float = 2.0) -> None:
        self.inner = inner
        self.discrete = isinstance(inner, clock_module.VirtualClock)
        self.stall_seconds = stall_seconds
        self.stalls = 0
        self._condition = threading.Condition()
        self._participants: dict[int, int] = {}  # thread id -> nesting depth
        self._waiting: set[int] = set()  # participants waiting (sleeping or idle)
        self._starting = 0  # participant threads started but not yet running
        self._event_waits: dict[int, threading.Event] = {}  # participants waiting on an event
        self._wake_ups: dict[object, float] = {}
        self._local = threading.local()

    # --- the Clock protocol -------------------------------------------------------------------------

    def now(self) -> float:
        return self.inner.now()

    def sleep(self, seconds: float) -> None:
        seconds = max(0.0, float(seconds))
        deadline: float | None = getattr(self._local, "deadline", None)
        stop = deadline is not None and self.inner.now() + seconds > deadline
        if stop:
            seconds = max(0.0, float(deadline or 0.0) - self.inner.now())
        if not self.discrete or threading.get_ident() not in self._participants:
            self.inner.sleep(seconds)
        else:
            self._sleep_among_participants(seconds)
        if stop:
            raise Stopped

    # --- participants -------------------------------------------------------------------------------

    @contextmanager
    def participating(self) -> Iterator[None]:
        """The current thread does simulated work until the block ends."""
        me = threading.get_ident()
        with self._condition:
            self._participants[me] = self._participants.get(me, 0) + 1
        try:
            yield
        finally:
            with self._condition:
                depth = self._participants.pop(me, 1) - 1
                if depth > 0:
                    self._participants[me] = depth
                self._condition.notify_all()

    def start_thread(
        self, target: Callable[..., Any], *args: Any, name: str | None = None
    ) -> threading.Thread:
        """Start a daemon thread that participates while ``target`` runs. It counts as busy from this call
        on: between its start and its first step, the clock must not move (an execution started by a
        handler would otherwise begin after the waits of the others)."""
        with self._condition:
            self._starting += 1

        def run() -> None:
            with self.participating():
                with self._condition:
                    self._starting -= 1
                target(*args)

        thread = threading.Thread(target=run, daemon=True, name=name)
        try:
            thread.start()
        except BaseException:
            with self._condition:
                self._starting -= 1
            raise
        return thread

    @contextmanager
    def invocation(self, deadline: float | None) -> Iterator[None]:
        """The current thread runs a Lambda invocation that times out at ``deadline`` (clock seconds)."""
        outer = getattr(self._local, "deadline", None)
        self._local.deadline = deadline
        try:
            yield
        finally:
            self._local.deadline = outer

    # --- the discrete-event wait ----------------------------------------------------------------------

    def _busy(self) -> int:
        # A participant whose event is set is about to wake: it counts as busy from the moment of the set.
        woken = sum(1 for event in self._event_waits.values() if event.is_set())
        return len(set(self._participants) - self._waiting) + self._starting + woken

    def wait_event(self, event: threading.Event, timeout: float | None) -> bool:
        """``event.wait(timeout)`` with the timeout on the clock: the waiting participant is idle, a set event
        makes it busy at once, and if everyone waits and its timeout is the earliest wake-up, the clock moves
        there. A thread that is no participant waits in real time."""
        me = threading.get_ident()
        if not self.discrete or me not in self._participants or me in self._waiting:
            return event.wait(timeout)
        token = object()
        with self._condition:
            target = None if timeout is None else self.inner.now() + max(0.0, float(timeout))
            if target is not None:
                self._wake_ups[token] = target
            self._waiting.add(me)
            self._event_waits[me] = event
            self._condition.notify_all()
            try:
                while not event.is_set():
                    if target is not None and self.inner.now() >= target:
                        return False
                    earliest = min(self._wake_ups.values()) if self._wake_ups else None
                    if (
                        target is not None
                        and earliest is not None
                        and target <= earliest
                        and self._busy() == 0
                    ):
                        self.inner.sleep(target - self.inner.now())
                        self._condition.notify_all()
                        return event.is_set()
                    self._condition.wait(0.02)
                return True
            finally:
                self._wake_ups.pop(token, None)
                self._waiting.discard(me)
                self._event_waits.pop(me, None)
                self._condition.notify_all()

    def thread_class(self) -> type[threading.Thread]:
        """A ``threading.Thread`` whose threads participate while they run (and count as busy from
        ``start()``), for code that creates its own threads (moto's task states)."""
        conductor = self

        class ConductedThread(threading.Thread):
            def start(self) -> None:
                with conductor._condition:
                    conductor._starting += 1
                try:
                    super().start()
                except BaseException:
                    with conductor._condition:
                        conductor._starting -= 1
                    raise

            def run(self) -> None:
                with conductor.participating():
                    with conductor._condition:
                        conductor._starting -= 1
                    super().run()

        return ConductedThread

    def event_class(self) -> type[threading.Event]:
        """A ``threading.Event`` whose ``wait`` runs on the clock (:meth:`wait_event`)."""
        conductor = self

        class ConductedEvent(threading.Event):
            def wait(self, timeout: float | None = None) -> bool:
                return conductor.wait_event(self, timeout)

        return ConductedEvent

    def _sleep_among_participants(self, seconds: float) -> None:
        me = threading.get_ident()
        token = object()
        with self._condition:
            target = self.inner.now() + seconds
            self._wake_ups[token] = target
            self._waiting.add(me)
            self._condition.notify_all()
            quiet_since = time.monotonic()
            try:
                while self.inner.now() < target:
                    earliest = min(self._wake_ups.values())
                    stalled = time.monotonic() - quiet_since > self.stall_seconds
                    if target <= earliest and (self._busy() == 0 or stalled):
                        if stalled and self._busy():
                            self.stalls += 1
                        self.inner.sleep(target - self.inner.now())
                        self._condition.notify_all()
                        break
                    if self._condition.wait(0.05):
                        quiet_since = time.monotonic()
            finally:
                del self._wake_ups[token]
                self._waiting.discard(me)
