"""``flexrestore``: start, follow and list restores of the deployed service, and manage its verification
plans and runs.

    flexrestore restore start --group G --cluster C --target T [--watch]
    flexrestore restore watch|get RESTORE_ID
    flexrestore restore list [--cluster C] [--limit N]
    flexrestore plan apply FILE...        (JSON or YAML)
    flexrestore plan list | get NAME | delete NAME | run NAME [--watch]
    flexrestore run get|watch RUN_ID | list [--plan NAME]

The command tree is ``flexrestore <group> <command>``: each group is a ``register(subparsers, parents,
epilog)`` listed in :data:`GROUPS`. Every command gets the same connection and output options
(``parents``), its own ``--help`` and the exit codes of :mod:`flexrestore.cli.exit_codes`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from flexrestore.cli import exit_codes, plans, restore
from flexrestore.cli.api import Api, CliError, Connection
from flexrestore.cli.render import OUTPUTS, write_json

PROG = "flexrestore"
DEFAULT_STACK = "flexrestore"
STACK_ENV = "FLEXRESTORE_STACK"
API_URL_ENV = "FLEXRESTORE_API_URL"

# The command groups, in the order --help lists them.
GROUPS: tuple[Callable[[Any, Sequence[argparse.ArgumentParser], str], None], ...] = (
    restore.register,
    plans.register_plan,
    plans.register_run,
)


def common_options() -> argparse.ArgumentParser:
    """The options every command takes: where the service is, whose credentials, what output."""
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("service and credentials")
    where.add_argument(
        "--stack",
        metavar="NAME",
        help=f"the deployed CloudFormation stack (default: ${STACK_ENV}, else {DEFAULT_STACK})",
    )
    where.add_argument(
        "--profile", metavar="NAME", help="AWS profile (default: the standard credential chain)"
    )
    where.add_argument("--region", metavar="REGION", help="AWS region of the stack (default: the profile's)")
    where.add_argument(
        "--api-url",
        metavar="URL",
        help=f"the API's base URL, skipping the stack lookup (default: ${API_URL_ENV})",
    )
    output = common.add_argument_group("output")
    output.add_argument(
        "-o",
        "--output",
        choices=OUTPUTS,
        default="table",
        help="table for people (default), json for scripts (stdout holds only JSON)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Operate the deployed Atlas Flex Restore service: start, follow and list restores; save, "
        "run and follow verification plans. "
        "Finds the stack by name, reads its ApiUrl output and signs every request (SigV4, execute-api) "
        "with your AWS credentials.",
        epilog=exit_codes.HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.set_defaults(command=None, help_of=parser)
    groups = parser.add_subparsers(title="command groups", metavar="GROUP")
    parents = [common_options()]
    for register in GROUPS:
        register(groups, parents, exit_codes.HELP)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("flexrestore")
    except PackageNotFoundError:  # pragma: no cover - a source tree without installing
        return "unknown"


def connection(args: argparse.Namespace) -> Connection:
    return Connection(
        stack=args.stack or os.environ.get(STACK_ENV) or DEFAULT_STACK,
        profile=args.profile,
        region=args.region,
        api_url=args.api_url or os.environ.get(API_URL_ENV) or None,
    )


def main(
    argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a usage error (2), already printed by argparse
        return int(exc.code) if isinstance(exc.code, int) else exit_codes.USAGE
    if args.command is None:
        args.help_of.print_help(err)
        return exit_codes.USAGE
    streams = restore.Streams(out=out, err=err, json=args.output == "json")
    try:
        with Api(connection(args)) as api:
            code: int = args.command(args, api, streams)
            return code
    except CliError as exc:
        if streams.json and exc.answer is not None:
            write_json(out, {"error": {"statusCode": exc.answer.status, **_error_body(exc.answer.body)}})
        err.write(f"{PROG}: {exc.message}\n")
        return exc.code
    except KeyboardInterrupt:
        err.write(f"\n{PROG}: interrupted\n")
        return exit_codes.INTERRUPTED
    except BrokenPipeError:  # the reader went away (| head)
        return exit_codes.OK


def _error_body(body: Any) -> dict[str, Any]:
    if isinstance(body, dict):
        return dict(body)
    return {"message": str(body)} if body else {}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
