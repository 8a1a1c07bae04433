"""src/requirements.txt (what `sam build` packages into the Lambdas) equals the runtime dependencies."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement

from tests.infrastructure.checks import REPO, _walk_runtime


def _requirements(lines: list[str]) -> dict[str, str]:
    parsed = [Requirement(line) for line in lines]
    return {req.name.lower(): str(req.specifier) for req in parsed}


def test_lambda_requirements_equal_the_runtime_dependencies() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = [
        line.strip()
        for line in (REPO / "src" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert _requirements(lines) == _requirements(project["dependencies"])


def test_the_functions_need_nothing_outside_the_runtime_dependencies() -> None:
    """Every third-party import of deployed code is declared (a test-only one would crash a Lambda)."""
    import ast
    import sys

    declared = {"aws_lambda_powertools", "boto3", "botocore", "httpx", "pydantic", "pydantic_core"}
    undeclared: set[str] = set()
    for path in sorted((REPO / "src" / "flexrestore").rglob("*.py")):
        relative = path.relative_to(REPO / "src" / "flexrestore").parts
        if relative[0] in ("local", "simulator"):
            continue  # local mode and the simulator are not deployed code paths
        for node in _walk_runtime(ast.parse(path.read_text())):  # TYPE_CHECKING imports never run
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            for name in names:
                top = name.split(".")[0]
                if (
                    top
                    and top != "flexrestore"
                    and top not in sys.stdlib_module_names
                    and top not in declared
                ):
                    undeclared.add(f"{path.relative_to(REPO)}: {name}")
    assert undeclared == set()
