"""Precise fault injection: what the simulator does to the next calls of one operation, whatever the scenario.

    sim.fail_next("createFlexRestoreJob", Fault.lost_answer())             # stored, the answer is lost
    sim.fail_next("getFlexRestoreJob", Fault.error(503), count=3)          # three 503s, then served again
    sim.fail_for("listFlexRestoreJobs", Fault.error(503), seconds=3600)    # down for an hour on the clock
    sim.fail_next("token", Fault.rate_limited(retry_after=60))             # the token endpoint, once

Operations are named by the spec's short ids (``getFlexCluster``, ``listFlexBackupSnapshots``,
``createFlexRestoreJob``, ``listFlexRestoreJobs``, ``getFlexRestoreJob``, ...) or ``"token"`` for
``POST /api/oauth/token``. A call meets at most one fault: the oldest armed rule that matches it (a rule
armed with ``fail_next`` spends one of its ``count`` per call it strikes; a ``fail_for`` rule strikes every
call until its moment has passed). Rules come before the scenario's own faults and the rate limit; a call
struck by a rule spends no rate-limit token. Authentication and the spec check still come first, so a
struck call is logged with its operation and auth kind (and a broken request is still a violation).

What a fault does (:class:`Fault`):

* ``error(status, retry_after=None)``: an Atlas ``ApiError`` answer with that status (429
  ``RATE_LIMITED_TOKEN_BUCKET``, 404 ``RESOURCE_NOT_FOUND``, 5xx ``UNEXPECTED_ERROR`` /
  ``SERVICE_UNAVAILABLE``) and, if given, ``Retry-After``; nothing is done;
* ``cut()``: the connection is closed with no answer (``Call.status`` 0), nothing done;
  ``lost_answer()`` the same after the operation was done (a create is stored);
* ``not_json()``: the operation is done and answered 200 with an HTML page instead of JSON;
* ``expired_credential()``: the bearer token (or Digest nonce) presented is refused as expired (401);
* ``timeout()``: no answer within the client's timeout, nothing done; ``timeout(after_acting=True)``: done,
  never answered; ``slow(seconds)``: done and answered that many seconds late.

Time on the wire is virtual like everything else: the simulator answers at once and says in the
``X-Simulator-Delay`` header how late Atlas would have answered (seconds, or ``never``). The client side
of that is :func:`flexrestore.simulator.delays.honour_delays`, which the offline stack installs: the
calling thread waits that long on the process clock, or its request's read timeout and then gets
``httpx.ReadTimeout``. A client that does not honour the header sees a late answer at once, and a
never-answered call as ``504 GATEWAY_TIMEOUT``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from flexrestore.simulator.problems import AtlasProblem

TOKEN_OPERATION = "token"
DELAY_HEADER = "X-Simulator-Delay"
NEVER = "never"

_ERROR_CODES = {
    404: "RESOURCE_NOT_FOUND",
    429: "RATE_LIMITED_TOKEN_BUCKET",
    500: "UNEXPECTED_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}


@dataclass(frozen=True)
class Fault:
    """What happens to one struck call. Build it with the class methods; ``describe()`` names it."""

    status: int | None = None  # an error answer with this status, nothing done
    retry_after: int | None = None  # ... carrying this Retry-After (seconds)
    drop: bool = False  # the connection is cut without an answer
    garbage: bool = False  # 200 with a body that is not JSON
    delay: float = 0.0  # the answer comes this many seconds late (math.inf: never)
    after_acting: bool = False  # the operation is done before the fault
    expire_credential: bool = False  # the bearer token / Digest nonce presented is refused as expired

    @classmethod
    def error(cls, status: int, *, retry_after: int | None = None) -> Fault:
        if not 400 <= status <= 599:
            raise ValueError("an error fault needs a 4xx or 5xx status")
        if retry_after is not None and retry_after < 0:
            raise ValueError("retry_after must be 0 or more seconds")
        return cls(status=status, retry_after=retry_after)

    @classmethod
    def rate_limited(cls, *, retry_after: int | None = None) -> Fault:
        return cls.error(429, retry_after=retry_after)

    @classmethod
    def cut(cls) -> Fault:
        """The connection is reset before Atlas does anything."""
        return cls(drop=True)

    @classmethod
    def lost_answer(cls) -> Fault:
        """Atlas does the operation (a create is stored), then the connection is cut before the answer."""
        return cls(drop=True, after_acting=True)

    @classmethod
    def not_json(cls) -> Fault:
        """Atlas does the operation, and something on the way answers 200 with an HTML page."""
        return cls(garbage=True, after_acting=True)

    @classmethod
    def timeout(cls, *, after_acting: bool = False) -> Fault:
        """No answer at all: the client's read timeout runs out (after the operation, if ``after_acting``)."""
        return cls(delay=math.inf, after_acting=after_acting)

    @classmethod
    def expired_credential(cls) -> Fault:
        """The bearer token (or Digest nonce) the call presents is refused as expired (401); a fresh token
        (or a new challenge's nonce) works. Atlas does nothing with the refused call."""
        return cls(expire_credential=True)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Done and answered ``seconds`` late (a timeout for a client that waits less)."""
        if not 0 < seconds < math.inf:
            raise ValueError("a slow answer needs a finite delay of more than 0 s")
        return cls(delay=float(seconds), after_acting=True)

    def problem(self) -> AtlasProblem:
        """The error answer of a ``status`` fault."""
        status = self.status or 500
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        code = _ERROR_CODES.get(status, "UNEXPECTED_ERROR")
        wait = f" Please retry after {self.retry_after} seconds." if self.retry_after is not None else ""
        return AtlasProblem(status, code, f"Injected fault: {code}.{wait}", headers=headers)

    def describe(self) -> str:
        if self.expire_credential:
            return "credential refused as expired"
        if self.status is not None:
            wait = f" Retry-After {self.retry_after}" if self.retry_after is not None else ""
            return f"HTTP {self.status}{wait}"
        done = " after acting" if self.after_acting else ""
        if self.drop:
            return f"connection cut{done}"
        if self.garbage:
            return "200 with a non-JSON body"
        if self.delay == math.inf:
            return f"no answer (timeout){done}"
        return f"answer {self.delay:g} s late"


@dataclass
class _Rule:
    operation: str
    fault: Fault
    left: int | None  # calls it still strikes (None: until ``until``)
    until: float | None  # clock time after which it strikes no more
    skip: int = 0  # matching calls let through before it strikes
    hits: int = 0  # calls it struck


@dataclass
class FaultPlan:
    """The armed rules; thread-safe (the simulator's server is threaded)."""

    operations: frozenset[str]
    _rules: list[_Rule] = field(default_factory=list)
    _armed: list[_Rule] = field(default_factory=list)  # every rule ever armed, spent ones included
    _lock: threading.Lock = field(default_factory=threading.Lock)
    struck: list[tuple[str, str]] = field(default_factory=list)  # (operation, fault) per struck call

    def arm(
        self,
        operation: str,
        fault: Fault,
        *,
        count: int | None = None,
        until: float | None = None,
        skip: int = 0,
    ) -> None:
        if operation not in self.operations:
            known = ", ".join(sorted(self.operations))
            raise ValueError(f"unknown operation {operation!r}; known: {known}")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1")
        if skip < 0:
            raise ValueError("skip must be 0 or more")
        rule = _Rule(operation, fault, count, until, skip)
        with self._lock:
            self._rules.append(rule)
            self._armed.append(rule)

    def never_struck(self) -> list[str]:
        """``"<operation>: <fault>"`` for every rule armed so far that has not struck a single call."""
        with self._lock:
            return [f"{r.operation}: {r.fault.describe()}" for r in self._armed if r.hits == 0]

    def clear(self, operations: Iterable[str] | None = None) -> None:
        """Disarm every rule (of those operations)."""
        names = None if operations is None else set(operations)
        with self._lock:
            self._rules = [r for r in self._rules if names is not None and r.operation not in names]

    def take(self, operation: str, now: float, *, expiring: bool = False) -> Fault | None:
        """The fault that strikes this call of ``operation`` (spending it), or None. ``expiring``: only
        the credential faults (checked before authentication), else only the others."""
        with self._lock:
            self._rules = [r for r in self._rules if r.until is None or now < r.until]
            for rule in self._rules:
                if rule.operation != operation or rule.fault.expire_credential != expiring:
                    continue
                if rule.skip > 0:
                    rule.skip -= 1
                    continue
                rule.hits += 1
                if rule.left is not None:
                    rule.left -= 1
                    if rule.left == 0:
                        self._rules.remove(rule)
                self.struck.append((operation, rule.fault.describe()))
                return rule.fault
            return None
