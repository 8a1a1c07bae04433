"""What local mode reads before it runs: the event or plan file and, for another Atlas, its credentials.

Every problem is a :class:`UsageError` whose message says what to fix; a secret's content is never echoed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DEFAULT_EVENT = Path("events") / "api-post-restore.json"
YAML_SUFFIXES = (".yaml", ".yml")

# Where credentials for --atlas-url come from when there is no --secret-file.
CREDENTIAL_ENV = (
    ("ATLAS_CLIENT_ID", "ATLAS_CLIENT_SECRET", "clientId", "clientSecret"),
    ("ATLAS_PUBLIC_KEY", "ATLAS_PRIVATE_KEY", "publicKey", "privateKey"),
)


class UsageError(Exception):
    """The user asked for something that cannot run; the message says what and how to fix it."""


def load_event(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the event file {path}: {exc.strerror or exc}") from None
    try:
        event = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(event, dict):
        raise UsageError(f"{path} must hold one JSON object (an API Gateway or EventBridge event)")
    return event


def is_plan_run_input(event: dict[str, Any]) -> bool:
    """What a plan's schedule sends to the run state machine (``events/schedule-plan-run.json``:
    ``{"plan", "requestedBy"}``), rather than an event for the intake (API Gateway, EventBridge)."""
    return isinstance(event.get("plan"), str) and "httpMethod" not in event and "detail-type" not in event


def load_plan(path: Path) -> dict[str, Any]:
    """A plan file as people keep it: JSON, or YAML (``.yaml``, ``.yml``); the document as the API takes it
    (JSON). PyYAML (a dependency of local mode, installed by ``make venv``) is imported for YAML only."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the plan file {path}: {exc.strerror or exc}") from None
    if path.suffix.lower() in YAML_SUFFIXES:
        try:
            import yaml
        except ImportError:
            raise UsageError(
                f"{path} is YAML, which needs PyYAML (pip install 'flexrestore[local]'); "
                "or give the plan as JSON"
            ) from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
            raise UsageError(f"{path} is not YAML ({getattr(exc, 'problem', None) or exc}{at})") from None
        # YAML reads unquoted dates as dates: the API takes JSON, so they go as the strings they were.
        document = json.loads(json.dumps(loaded, default=str))
    else:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"{path} is not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                f"a YAML plan's file name ends in {' or '.join(YAML_SUFFIXES)}"
            ) from None
    if not isinstance(document, dict):
        raise UsageError(f"{path} must hold one plan (an object with name, sources, ...)")
    if not isinstance(document.get("name"), str) or not document["name"]:
        raise UsageError(f"{path} has no name: a plan is saved as PUT /plans/{{name}}")
    return document


def load_secret(secret_file: Path | None) -> dict[str, str]:
    """Atlas credentials for --atlas-url: the secret's JSON from a file, or from the environment."""
    if secret_file is not None:
        try:
            data = json.loads(secret_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"cannot read the secret file {secret_file}: {exc.strerror or exc}") from None
        except json.JSONDecodeError:
            # Never echo the content: it is a secret.
            raise UsageError(f"the secret file {secret_file} is not JSON") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise UsageError(f"the secret file {secret_file} must hold a JSON object of strings")
        return {str(k): str(v) for k, v in data.items()}
    for id_var, secret_var, id_key, secret_key in CREDENTIAL_ENV:
        if os.environ.get(id_var) and os.environ.get(secret_var):
            return {id_key: os.environ[id_var], secret_key: os.environ[secret_var]}
    names = " or ".join(f"{a} and {b}" for a, b, _, _ in CREDENTIAL_ENV)
    raise UsageError(f"--atlas-url needs credentials: --secret-file FILE (the secret's JSON), or {names}")
