"""One pin: requirements/lambda/requirements.txt is what `sam build` installs and what the tests ran with.

The lock pins every runtime dependency (pyproject.toml [project.dependencies]) and everything they pull in,
within pyproject's ranges; this environment, installed by `make test` or `make test-runtime` with the lock as
constraints, has exactly those versions; and the deployed code needs nothing else.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.infrastructure import lambda_build
from tests.infrastructure.checks import _walk_runtime


@pytest.fixture(scope="module")
def pins() -> dict[str, str]:
    return lambda_build.lock_pins()


def test_every_runtime_dependency_is_pinned_within_its_range(pins: dict[str, str]) -> None:
    problems = []
    for requirement in lambda_build.runtime_requirements():
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement}: not pinned in {lambda_build.LOCK.name}")
        elif Version(pins[name]) not in requirement.specifier:
            problems.append(f"{requirement}: pinned to {pins[name]}, outside pyproject's range")
    assert problems == []


def test_the_lock_pins_the_runtime_dependencies_and_everything_they_need_and_nothing_else(
    pins: dict[str, str],
) -> None:
    needed = lambda_build.installed_runtime_closure()
    assert sorted(needed) == sorted(pins), "run `make lock` (README: Deploy > Artifacts)"


def test_the_tested_versions_are_the_pinned_versions(pins: dict[str, str]) -> None:
    """What this test run imports is what sam build puts into the layer (tested == deployed)."""
    installed = lambda_build.installed_runtime_closure()
    differing = {
        name: f"installed {version}, pinned {pins.get(name)}"
        for name, version in installed.items()
        if pins.get(name) != version
    }
    assert differing == {}, "reinstall the venv from the lock (make venv) or regenerate it (make lock)"


def test_a_lock_line_that_is_no_exact_pin_is_refused(tmp_path: Path) -> None:
    for line in ("boto3>=1.35", "boto3", "Boto3==1.0", "boto3==1.0 --hash=sha256:00"):
        broken = tmp_path / "requirements.txt"
        broken.write_text(f"# header\n{line}\n")
        with pytest.raises(ValueError, match="not an exact pin"):
            lambda_build.lock_pins(broken)
    twice = tmp_path / "twice.txt"
    twice.write_text("six==1.16.0\nsix==1.17.0\n")
    with pytest.raises(ValueError, match="pinned twice"):
        lambda_build.lock_pins(twice)


def test_the_deployed_code_needs_nothing_outside_the_runtime_dependencies(tmp_path: Path) -> None:
    """Each third-party import of what a function carries is declared (a test-only one crashes a Lambda)."""
    declared = {"aws_lambda_powertools", "boto3", "botocore", "httpx", "pydantic", "pydantic_core"}
    artifact = lambda_build.build_function_code(tmp_path)  # the files a function carries, nothing else
    undeclared: set[str] = set()
    for path in sorted(artifact.rglob("*.py")):
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
                    undeclared.add(f"{path.relative_to(artifact)}: {name}")
    assert undeclared == set()
