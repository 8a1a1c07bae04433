"""What `sam build` puts into the Lambda artifacts, checked offline (no sam, no python3.13 needed).

- Code: every function is built by src/Makefile's ``build-%`` rule (Metadata BuildMethod: makefile, CodeUri
  src/), which keeps everything under src/flexrestore except local/, cli/ and simulator/.
- Dependencies: one layer shared by every function (Globals Layers), built by sam's Python builder from
  requirements/lambda/requirements.txt, the lock that the test environments are installed from as well.

``check_*`` functions return a list of problems (empty = fine), so tests can run them on broken copies.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.infrastructure.checks import PACKAGE, REPO, code_uri

LOCK = REPO / "requirements" / "lambda" / "requirements.txt"
CODE_MAKEFILE = REPO / "src" / "Makefile"
# What production never runs: these subpackages stay out of every function (src/Makefile, NOT_DEPLOYED).
NOT_DEPLOYED = ("local", "simulator", "cli")
PIN = re.compile(r"([a-z0-9]+(?:-[a-z0-9]+)*)==([^\s;#=<>!~]+)")


# --------------------------------------------------------------------------- the lock


def lock_pins(path: Path = LOCK) -> dict[str, str]:
    """{canonical name: version} of the lock; a line that is no exact ``name==version`` pin is an error."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.fullmatch(line)
        if not match:
            raise ValueError(f"{path.name}:{number}: {line!r} is not an exact pin (canonical-name==version)")
        name, version = match.groups()
        if name in pins:
            raise ValueError(f"{path.name}:{number}: {name} is pinned twice")
        pins[name] = version
    return pins


def runtime_requirements() -> list[Requirement]:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"]]


def installed_runtime_closure() -> dict[str, str]:
    """{canonical name: installed version} of the runtime dependencies and all they need, here."""
    installed: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    pending = [r for r in runtime_requirements() if r.marker is None or r.marker.evaluate()]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        distribution = importlib.metadata.distribution(requirement.name)
        installed[name] = distribution.version
        for text in distribution.requires or []:
            needed = Requirement(text)
            if needed.marker is None or any(
                needed.marker.evaluate({"extra": extra}) for extra in (*requirement.extras, "")
            ):
                pending.append(needed)
    return installed


# --------------------------------------------------------------------------- the template


def serverless_functions(sam: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in sam["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


def function_layers(sam: dict[str, Any], logical_id: str) -> list[Any]:
    props = sam["Resources"][logical_id].get("Properties", {})
    layers = props.get("Layers", sam.get("Globals", {}).get("Function", {}).get("Layers", []))
    return list(layers)


def check_lean_builds(sam: dict[str, Any]) -> list[str]:
    """Every function is built by src/Makefile from CodeUri src/, so it gets the runtime package only."""
    problems = []
    for logical_id, resource in sorted(serverless_functions(sam).items()):
        method = (resource.get("Metadata") or {}).get("BuildMethod")
        if method != "makefile":
            problems.append(
                f"{logical_id}: Metadata BuildMethod is {method!r}, not 'makefile' (without it, sam copies "
                "all of src/, local/ and simulator/ included; src/Makefile builds the runtime package only)"
            )
        if (resource.get("Metadata") or {}).get("ContextPath"):
            problems.append(
                f"{logical_id}: Metadata ContextPath points sam at another Makefile than src/Makefile"
            )
        uri = code_uri(sam, logical_id)
        if (REPO / uri).resolve() != CODE_MAKEFILE.parent:
            problems.append(f"{logical_id}: CodeUri {uri} is not src/, where src/Makefile builds the code")
    return problems


def check_shared_layer(sam: dict[str, Any]) -> list[str]:
    """Every function has the one dependencies layer; sam builds it from the lock for their runtime."""
    problems = []
    functions = serverless_functions(sam)
    layer_ids = {
        layer["Ref"]
        for logical_id in functions
        for layer in function_layers(sam, logical_id)
        if isinstance(layer, dict) and "Ref" in layer
    }
    for logical_id in sorted(functions):
        refs = [layer.get("Ref") for layer in function_layers(sam, logical_id) if isinstance(layer, dict)]
        if len(layer_ids) != 1 or refs != sorted(layer_ids):
            problems.append(f"{logical_id}: layers {refs}, not the one layer every function shares")
    function_globals = sam.get("Globals", {}).get("Function", {})
    for layer_id in sorted(layer_ids):
        layer = sam["Resources"].get(layer_id, {})
        if layer.get("Type") != "AWS::Serverless::LayerVersion":
            problems.append(f"{layer_id}: not an AWS::Serverless::LayerVersion of this template")
            continue
        props, metadata = layer.get("Properties", {}), layer.get("Metadata") or {}
        manifest = REPO / str(props.get("ContentUri")) / "requirements.txt"
        if manifest.resolve() != LOCK.resolve():
            problems.append(
                f"{layer_id}: sam installs {manifest.relative_to(REPO)}, not the lock {LOCK.name}"
            )
        runtime, architectures = function_globals.get("Runtime"), function_globals.get("Architectures")
        if metadata.get("BuildMethod") != runtime:
            problems.append(f"{layer_id}: BuildMethod {metadata.get('BuildMethod')!r}, not {runtime!r}")
        if [metadata.get("BuildArchitecture")] != architectures:
            problems.append(
                f"{layer_id}: BuildArchitecture {metadata.get('BuildArchitecture')!r}, not {architectures}"
            )
        if props.get("CompatibleRuntimes") != [runtime]:
            problems.append(
                f"{layer_id}: CompatibleRuntimes {props.get('CompatibleRuntimes')}, not [{runtime}]"
            )
        if props.get("CompatibleArchitectures") != architectures:
            problems.append(f"{layer_id}: CompatibleArchitectures {props.get('CompatibleArchitectures')}")
    return problems


# --------------------------------------------------------------------------- the code artifact


def build_function_code(destination: Path, logical_id: str = "AnyFunction") -> Path:
    """Run src/Makefile's rule the way sam does (in a scratch copy of CodeUri); returns the artifact dir."""
    scratch = destination / "scratch"
    shutil.copytree(REPO / "src", scratch, ignore=shutil.ignore_patterns(".aws-sam", ".git"))
    artifact = destination / logical_id
    subprocess.run(
        ["make", "--no-print-directory", "--makefile", str(scratch / "Makefile"), f"build-{logical_id}"],
        cwd=scratch,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ARTIFACTS_DIR": str(artifact)},
        check=True,
        capture_output=True,
        text=True,
    )
    return artifact


def runtime_files(root: Path) -> set[str]:
    """Files of the package under ``root`` that a function should carry: all but NOT_DEPLOYED and caches."""
    package = root / PACKAGE
    return {
        str(path.relative_to(root))
        for path in package.rglob("*")
        if path.is_file()
        and path.relative_to(package).parts[0] not in NOT_DEPLOYED
        and "__pycache__" not in path.parts
        and path.suffix not in (".pyc", ".pyo")
    }
