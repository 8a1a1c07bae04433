"""The shape of the code keeps its rules (read with ``ast``, every import, function-level ones included):
the domain and the contracts know no AWS, no HTTP and no adapter; adapters never reach up into the edges
or the entry points; deployed code never imports the offline tools; entry points stay thin."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "flexrestore"
OUTSIDE_SYSTEMS = ("boto3", "botocore", "httpx", "aws_lambda_powertools", "moto")
MAX_HANDLER_LINES = 80


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def offending(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(PACKAGE) if path.is_relative_to(PACKAGE) else path} imports {name}"
        for path in paths
        for name in sorted(imports(path))
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]


@pytest.mark.parametrize("folder", ["domain", "contracts"])
def test_the_domain_and_the_contracts_know_no_outside_system_and_no_adapter(folder: str) -> None:
    forbidden = (
        *OUTSIDE_SYSTEMS,
        "flexrestore.aws",
        "flexrestore.atlas",
        "flexrestore.triggers",
        "flexrestore.handlers",
        "flexrestore.bootstrap",
        "flexrestore.local",
        "flexrestore.simulator",
    )
    assert offending(modules(folder), forbidden) == []


def test_the_contracts_do_not_depend_on_the_domain() -> None:
    assert offending(modules("contracts"), ("flexrestore.domain",)) == []


@pytest.mark.parametrize("folder", ["aws", "atlas"])
def test_adapters_never_reach_up_into_edges_or_entry_points(folder: str) -> None:
    forbidden = ("flexrestore.triggers", "flexrestore.handlers", "flexrestore.bootstrap", "flexrestore.local")
    assert offending(modules(folder), forbidden) == []


def test_deployed_code_never_imports_the_offline_tools() -> None:
    deployed = [
        p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] not in ("local", "simulator")
    ]
    assert offending(deployed, ("flexrestore.local", "flexrestore.simulator", "moto")) == []


@pytest.mark.parametrize("handler", sorted(p.name for p in (PACKAGE / "handlers").glob("*.py")))
def test_each_lambda_entry_point_is_thin(handler: str) -> None:
    lines = (PACKAGE / "handlers" / handler).read_text(encoding="utf-8").count("\n")
    assert lines < MAX_HANDLER_LINES, f"handlers/{handler} has {lines} lines"


def test_the_rules_would_catch_a_domain_module_importing_an_adapter(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def f():\n    from flexrestore.aws.store import RestoreStore\n    import boto3\n")
    assert offending([broken], ("flexrestore.aws", "boto3")) != []
