"""Each function's artifact is the runtime package only, and its dependencies are the one shared layer.

src/Makefile's rule is run here the way `sam build` runs it, so this holds without sam or python3.13;
`make package` checks the real build the same way (tests/infrastructure/package.sh). Each check also runs on a
deliberately broken copy of the template, so a check that could never fail would show up.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name

from tests.infrastructure import checks, lambda_build


@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    return checks.load_sam_template()


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lambda_build.build_function_code(tmp_path_factory.mktemp("lambda-code"))


def handlers(sam: dict[str, Any]) -> dict[str, str]:
    default = sam.get("Globals", {}).get("Function", {}).get("Handler")
    return {
        logical_id: str(resource.get("Properties", {}).get("Handler", default))
        for logical_id, resource in lambda_build.serverless_functions(sam).items()
    }


def test_every_function_is_built_by_src_makefile(sam: dict[str, Any]) -> None:
    assert lambda_build.check_lean_builds(sam) == []


def test_every_function_shares_the_one_layer_sam_builds_from_the_lock(sam: dict[str, Any]) -> None:
    assert lambda_build.check_shared_layer(sam) == []


def test_the_code_artifact_is_the_runtime_package_and_nothing_else(artifact: Path) -> None:
    assert [p.name for p in artifact.iterdir()] == [checks.PACKAGE]
    package = artifact / checks.PACKAGE
    for left_out in lambda_build.NOT_DEPLOYED:
        assert not (package / left_out).exists()
    assert list(package.rglob("*.yaml")) == []  # the OpenAPI spec only the simulator reads
    assert list(package.rglob("__pycache__")) == []
    # Everything else under src/flexrestore is there, a subpackage added later included.
    assert lambda_build.runtime_files(artifact) == lambda_build.runtime_files(checks.REPO / "src")
    assert {str(p.relative_to(artifact)) for p in artifact.rglob("*") if p.is_file()} == (
        lambda_build.runtime_files(artifact)
    )


def test_no_handler_reaches_code_that_is_left_out(sam: dict[str, Any], artifact: Path) -> None:
    problems = []
    for logical_id, handler in sorted(handlers(sam).items()):
        module = handler.rpartition(".")[0]
        for name, path in checks.import_closure(module, checks.REPO / "src").items():
            if checks.module_path(name, artifact) is None:
                problems.append(f"{logical_id}: {module} imports {name} ({path}), which is not deployed")
    assert problems == []


# Imports each handler the way Lambda does: the artifact first on sys.path, and nothing from site-packages but
# what the layer holds (the pinned distributions); anything else there (moto, yaml, ...) raises.
_IMPORT_LIKE_LAMBDA = """
import importlib, importlib.abc, importlib.machinery, json, site, sys
artifact, allowed, handlers = sys.argv[1], set(json.loads(sys.argv[2])), json.loads(sys.argv[3])
site_dirs = tuple(site.getsitepackages())

class OnlyTheLayer(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        top = name.partition(".")[0]
        if top in allowed or path is not None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name)
        where = [spec.origin or "", *(spec.submodule_search_locations or [])] if spec else []
        if any(str(place).startswith(site_dirs) for place in where):
            raise ModuleNotFoundError(f"{name}: neither in the function's artifact nor in the layer")
        return None

sys.meta_path.insert(0, OnlyTheLayer())
sys.path.insert(0, artifact)
for handler in handlers:
    module_name, _, attribute = handler.rpartition(".")
    module = importlib.import_module(module_name)
    assert module.__file__.startswith(artifact), f"{module_name} imported from {module.__file__}"
    assert callable(getattr(module, attribute)), handler
"""


def layer_import_names() -> set[str]:
    pinned = set(lambda_build.lock_pins())
    return {
        top
        for top, distributions in importlib.metadata.packages_distributions().items()
        if any(canonicalize_name(d) in pinned for d in distributions)
    }


def test_every_handler_imports_from_its_artifact_and_the_layer_alone(
    sam: dict[str, Any], artifact: Path
) -> None:
    answer = subprocess.run(
        [
            sys.executable,
            "-c",
            _IMPORT_LIKE_LAMBDA,
            str(artifact),
            json.dumps(sorted(layer_import_names() | {checks.PACKAGE})),
            json.dumps(sorted(set(handlers(sam).values()))),
        ],
        env={
            "PATH": "/usr/bin:/bin",
            "AWS_DEFAULT_REGION": checks.REGION,
            **literal_globals_environment(sam),
        },
        cwd=artifact,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert answer.returncode == 0, answer.stderr


def literal_globals_environment(sam: dict[str, Any]) -> dict[str, str]:
    """What every function gets from Globals with a literal value (POWERTOOLS_TRACE_DISABLED, ...)."""
    variables = sam.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    return {name: value for name, value in variables.items() if isinstance(value, str)}


def test_the_import_check_refuses_what_the_layer_lacks(artifact: Path) -> None:
    answer = subprocess.run(
        [
            sys.executable,
            "-c",
            _IMPORT_LIKE_LAMBDA,
            str(artifact),
            json.dumps(["flexrestore"]),  # a layer without pydantic and the rest
            '["flexrestore.handlers.poll.handler"]',
        ],
        env={"PATH": "/usr/bin:/bin"},
        cwd=artifact,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert answer.returncode != 0
    assert "neither in the function's artifact nor in the layer" in answer.stderr


# --------------------------------------------------------------------------- the checks fail when they should


def _edit(path: list[str], value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(sam: dict[str, Any]) -> None:
        node = sam
        for key in path[:-1]:
            node = node.setdefault(key, {})
        if value is _DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value

    return apply


_DELETE = object()
_NEW_FUNCTION = {
    "Type": "AWS::Serverless::Function",
    "Properties": {"Handler": "flexrestore.handlers.poll.handler"},
}

BROKEN: dict[str, tuple[Callable[[dict[str, Any]], None], str, str]] = {
    "function-without-makefile": (
        _edit(["Resources", "PollFunction", "Metadata"], _DELETE),
        "lean",
        "PollFunction: Metadata BuildMethod is None",
    ),
    "function-added-without-makefile": (
        _edit(["Resources", "LaterFunction"], _NEW_FUNCTION),
        "lean",
        "LaterFunction: Metadata BuildMethod is None",
    ),
    "function-with-own-code-dir": (
        _edit(["Resources", "RecordFunction", "Properties", "CodeUri"], "src/flexrestore/"),
        "lean",
        "RecordFunction: CodeUri src/flexrestore/ is not src/",
    ),
    "function-with-another-makefile": (
        _edit(["Resources", "RecordFunction", "Metadata", "ContextPath"], "."),
        "lean",
        "RecordFunction: Metadata ContextPath",
    ),
    "function-with-own-layers": (
        _edit(["Resources", "NotifyFunction", "Properties", "Layers"], []),
        "layer",
        "NotifyFunction: layers [], not the one layer",
    ),
    "no-layer": (
        _edit(["Globals", "Function", "Layers"], _DELETE),
        "layer",
        "IntakeFunction: layers [], not the one layer",
    ),
    "layer-not-from-the-lock": (
        _edit(["Resources", "DependenciesLayer", "Properties", "ContentUri"], "src/"),
        "layer",
        "sam installs src/requirements.txt, not the lock",
    ),
    "layer-for-another-architecture": (
        _edit(["Resources", "DependenciesLayer", "Metadata", "BuildArchitecture"], "x86_64"),
        "layer",
        "BuildArchitecture 'x86_64'",
    ),
    "layer-for-another-runtime": (
        _edit(["Resources", "DependenciesLayer", "Metadata", "BuildMethod"], "python3.12"),
        "layer",
        "BuildMethod 'python3.12', not 'python3.13'",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_template_is_caught(sam: dict[str, Any], case: str) -> None:
    edit, check, expected = BROKEN[case]
    broken = copy.deepcopy(sam)
    edit(broken)
    run = lambda_build.check_lean_builds if check == "lean" else lambda_build.check_shared_layer
    problems = run(broken)
    assert any(expected in problem for problem in problems), problems
