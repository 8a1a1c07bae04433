"""A deployed service, offline, for the ``flexrestore`` command: the offline stack behind its signed HTTP
front, a (moto) CloudFormation stack whose ``ApiUrl`` output points at the front, and an AWS credentials file
with the front's test principals as profiles."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import boto3

from flexrestore.cli.main import main
from flexrestore.clock import VirtualClock
from flexrestore.local.front import ASSUMED_OPERATOR, AUDITOR, OPERATOR, OfflineFront, Principal
from flexrestore.local.harness import REGION, OfflineStack

STACK_NAME = "flexrestore-test"
QUIET = {"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
# Profiles of the credentials file: the front's principals, and one whose secret is wrong.
PROFILES: dict[str, Principal] = {
    "operator": OPERATOR,
    "alice": ASSUMED_OPERATOR,
    "auditor": AUDITOR,
    "wrong-secret": Principal(OPERATOR.access_key_id, "not-the-secret-of-this-key", OPERATOR.arn),
}


@dataclass
class Run:
    """One run of the command: exit code and what it wrote."""

    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


@dataclass
class Deployed:
    stack: OfflineStack
    front: OfflineFront
    runs: list[Run] = field(default_factory=list)

    def run(self, *args: str, profile: str | None = "operator", stack: str | None = STACK_NAME) -> Run:
        """``flexrestore ARGS --stack flexrestore-test --profile operator`` (each added unless None)."""
        extra = [*(["--stack", stack] if stack else []), *(["--profile", profile] if profile else [])]
        out, err = io.StringIO(), io.StringIO()
        code = main([*args, *extra], stdout=out, stderr=err)
        run = Run(code, out.getvalue(), err.getvalue())
        self.runs.append(run)
        return run


def write_credentials(folder: Path) -> dict[str, str]:
    """An AWS shared credentials file and config file with :data:`PROFILES`; the variables naming them."""
    credentials, config = folder / "credentials", folder / "config"
    lines: list[str] = []
    for name, principal in PROFILES.items():
        lines += [
            f"[{name}]",
            f"aws_access_key_id = {principal.access_key_id}",
            f"aws_secret_access_key = {principal.secret_access_key}",
            *([f"aws_session_token = {principal.session_token}"] if principal.session_token else []),
            "",
        ]
    credentials.write_text("\n".join(lines))
    config.write_text("".join(f"[profile {name}]\nregion = {REGION}\n\n" for name in PROFILES))
    return {"AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_CONFIG_FILE": str(config)}


def create_cloudformation_stack(name: str, api_url: str) -> None:
    """What ``sam deploy`` leaves for the command to find: a stack with an ``ApiUrl`` output."""
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"ApiUrl": {"Value": api_url}},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=name, TemplateBody=json.dumps(template)
    )


@contextmanager
def deployed(folder: Path, *, scenario: str = "ok", env: dict[str, str] | None = None) -> Iterator[Deployed]:
    with (
        OfflineStack(
            scenario=scenario, clock=VirtualClock(), env_overrides={**QUIET, **(env or {})}
        ) as stack,
        OfflineFront(stack) as front,
    ):
        create_cloudformation_stack(STACK_NAME, front.api_url)
        # patch.dict puts the whole environment back as it was (the stack's own variables included).
        with mock.patch.dict(os.environ, write_credentials(folder)):
            yield Deployed(stack, front)
