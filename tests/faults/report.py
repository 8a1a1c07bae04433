"""The fault matrix as a table at the end of the pytest run (tests/conftest.py calls these hooks).

Each cell's test records ``fault_cell`` = {table, row, column, expected, outcome} as a user property; the
reports reach the controlling process under xdist too, so the table covers every worker's cells.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

COMMAND = ".venv/bin/pytest -q -n 2 tests/faults"
# Atlas phases, then Lambda functions, in the order a restore meets them.
COLUMNS = ("none", "token", "snapshot", "target", "intake", "create", "poll", "record", "notify", "reconcile")


@dataclass
class Result:
    table: str
    row: str
    column: str
    expected: str
    outcome: str
    passed: bool = True
    known_bug: bool = False  # an expected failure (strict xfail) until its bug is fixed
    order: int = 0  # the cell's place in tests/faults/cells.py: tables and rows keep that order
    seconds: float = 0.0
    start: float | None = None
    stop: float | None = None


@dataclass
class Matrix:
    results: dict[str, Result] = field(default_factory=dict)  # by test node id

    def add(self, report: Any) -> None:
        cell = dict(report.user_properties).get("fault_cell")
        if cell is None:
            return
        result = self.results.setdefault(report.nodeid, Result(**cell))
        result.outcome = cell.get("outcome", result.outcome)
        result.known_bug = result.known_bug or hasattr(report, "wasxfail")
        result.passed = result.passed and not report.failed and not result.known_bug
        result.seconds += report.duration
        start, stop = getattr(report, "start", None), getattr(report, "stop", None)
        if start is not None:
            result.start = start if result.start is None else min(result.start, start)
        if stop is not None:
            result.stop = stop if result.stop is None else max(result.stop, stop)

    def lines(self) -> list[str]:
        if not self.results:
            return []
        results = list(self.results.values())
        passed = sum(r.passed for r in results)
        known = sum(r.known_bug for r in results)
        starts = [r.start for r in results if r.start is not None]
        stops = [r.stop for r in results if r.stop is not None]
        wall = f", {max(stops) - min(starts):.1f} s from first to last" if starts and stops else ""
        lines = [
            f"{len(results)} cells, {passed} passed, {len(results) - passed - known} failed"
            + (f", {known} known bugs" if known else "")
            + " "
            f"({sum(r.seconds for r in results):.1f} s in the cells{wall}; alone: {COMMAND})",
            "Each cell: the event goes in once, then only time passes. ok = at most one Atlas job, the",
            "final record matches Atlas, one notification, the target free (or held to its lease end for an",
            "uncertain create), no secret in any log, record, message or answer; or a refusal that created",
            "nothing and says to retry.",
        ]
        by_table: dict[str, list[Result]] = defaultdict(list)
        for result in sorted(results, key=lambda r: r.order):
            by_table[result.table].append(result)
        for name, table in by_table.items():
            lines += ["", *_table(name, table)]
        failed = [r for r in results if not r.passed]
        if failed:
            lines += ["", "Failed cells (and known bugs):"]
            lines += [
                f"  {r.column}: {r.row}: expected {r.expected}, saw {r.outcome}"
                + (" (known bug)" if r.known_bug else "")
                for r in failed
            ]
        return lines


def _table(name: str, results: list[Result]) -> list[str]:
    columns: list[str] = []
    rows: list[str] = []
    for result in results:
        if result.column not in columns:
            columns.append(result.column)
        if result.row not in rows:
            rows.append(result.row)
    columns.sort(key=lambda c: COLUMNS.index(c) if c in COLUMNS else len(COLUMNS))
    cells = {(r.row, r.column): r for r in results}

    def text(result: Result | None) -> str:
        if result is None:
            return ""
        verdict = "ok" if result.passed else "BUG" if result.known_bug else "FAIL"
        return f"{verdict} {_short(result.outcome)}"

    width = max(len(name), *(len(row) for row in rows))
    widths = [max(len(column), *(len(text(cells.get((row, column)))) for row in rows)) for column in columns]
    header = name.ljust(width) + "  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    lines = [header.rstrip(), "-" * len(header.rstrip())]
    for row in rows:
        line = row.ljust(width) + "  "
        line += "  ".join(text(cells.get((row, c))).ljust(w) for c, w in zip(columns, widths, strict=True))
        lines.append(line.rstrip())
    return lines


def _short(outcome: str) -> str:
    return outcome.replace("refused (HTTP 503)", "refused 503").replace(
        "refused (raised for a redelivery: 503 ", "refused 503 ("
    )


MATRIX = Matrix()


def runtest_logreport(report: Any) -> None:
    MATRIX.add(report)


def terminal_summary(terminalreporter: Any) -> None:
    lines = MATRIX.lines()
    if not lines:
        return
    terminalreporter.section("fault matrix")
    for line in lines:
        terminalreporter.write_line(line)
