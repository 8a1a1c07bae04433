"""The one way the simulator answers an error: an Atlas ``ApiError`` body (``error``, ``errorCode``,
``detail``, ``reason``, ``parameters`` and, for a bad request, ``badRequestDetail.fields``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any


@dataclass
class AtlasProblem(Exception):
    """An error answer. ``violation`` is set when the request broke the spec (it is then recorded)."""

    status: int
    error_code: str
    detail: str
    # Scalars, as real Atlas sends them (the spec types the items as objects).
    parameters: list[Any] = field(default_factory=list)
    fields: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    violation: str | None = None

    def __post_init__(self) -> None:
        super().__init__(f"{self.status} {self.error_code}: {self.detail}")

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "detail": self.detail,
            "error": self.status,
            "errorCode": self.error_code,
            "parameters": self.parameters,
            "reason": HTTPStatus(self.status).phrase,
        }
        if self.fields:
            body["badRequestDetail"] = {
                "fields": [{"field": name, "description": why} for name, why in self.fields]
            }
        return body
