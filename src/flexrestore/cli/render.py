"""Output of the ``flexrestore`` command: tables and lines for people, one JSON document for scripts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

OUTPUTS = ("table", "json")


def duration(value: float) -> str:
    seconds = round(value)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def write_json(out: TextIO, data: Any) -> None:
    out.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    out.flush()


def write_lines(out: TextIO, lines: Sequence[str]) -> None:
    for line in lines:
        out.write(line + "\n")
    out.flush()


def table(rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> list[str]:
    """Columns aligned on the widest cell; the last column is not padded."""
    cells = [[str(c) for c in columns], *[["-" if v is None else str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return [
        "  ".join(cell.ljust(widths[i]) if i < len(columns) - 1 else cell for i, cell in enumerate(row))
        for row in cells
    ]


def key_values(pairs: Sequence[tuple[str, Any]]) -> list[str]:
    """``label  value`` lines for the pairs whose value is not None; a list value continues on more lines."""
    shown = [(label, value) for label, value in pairs if value is not None and value != ""]
    width = max((len(label) for label, _ in shown), default=0)
    lines: list[str] = []
    for label, value in shown:
        values = value if isinstance(value, list) else [value]
        for index, item in enumerate(values):
            lines.append(f"{(label if index == 0 else ''):<{width}}  {item}")
    return lines


def restore_status(record: Mapping[str, Any]) -> str:
    """The final status once there is one, else the Atlas job's latest status."""
    return str(record.get("finalStatus") or record.get("status") or "UNKNOWN")


def record_lines(record: Mapping[str, Any]) -> list[str]:
    """A restore record (``GET /restores/{id}``) for a person."""
    requested_by = record.get("requestedBy") or {}
    who = requested_by.get("caller") or requested_by.get("schedule") or requested_by.get("alarm")
    trigger = requested_by.get("trigger")
    rto = None
    if record.get("durationSeconds") is not None:
        rto = duration(float(record["durationSeconds"]))
        if record.get("atlasDurationSeconds") is not None:
            rto += f" (Atlas restore itself {duration(float(record['atlasDurationSeconds']))})"
    error = record.get("error")
    timeline = [
        f"{entry.get('at')}  {entry.get('status')}"
        for entry in record.get("timeline") or []
        if isinstance(entry, dict)
    ]
    return key_values(
        [
            ("Restore", f"{record.get('restoreId')}  {restore_status(record)}"),
            ("Source", record.get("source")),
            ("Snapshot", record.get("snapshotId")),
            (
                "Target",
                f"{record.get('targetDeploymentItemName')} in project {record.get('targetProjectId')}",
            ),
            (
                "Requested",
                f"{record.get('requestedAt')} by {who or 'unknown'}" + (f" ({trigger})" if trigger else ""),
            ),
            ("Reason", record.get("reason")),
            ("Break glass", "yes" if record.get("breakGlass") else None),
            ("Atlas job", f"{record.get('restoreJobId')}  {record.get('status')}"),
            ("Finished", record.get("finishedAt")),
            ("RTO" if record.get("finalStatus") == "COMPLETED" else "Duration", rto),
            ("Error", f"{error.get('code')}: {error.get('message')}" if isinstance(error, dict) else None),
            ("Timeline", timeline or None),
        ]
    )
