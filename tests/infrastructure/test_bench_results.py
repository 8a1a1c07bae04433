"""`make bench` writes bench/results.json (tests/benchmarks/bench_results.py): the script runs, in its quick
mode, and writes every figure issue 10 asks for; the README quotes the committed figures. No figure is
judged here: timings depend on the machine, the benchmark reports them and README shows them."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "benchmarks" / "bench_results.py"
HANDLER_MODULES = sorted(p.stem for p in (REPO / "src" / "flexrestore" / "handlers").glob("*.py"))


def bench_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_results", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    output = tmp_path_factory.mktemp("bench") / "results.json"
    answer = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert answer.returncode == 0, answer.stderr[-3000:]
    results: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
    return results


def test_quick_mode_writes_every_figure(quick_results: dict[str, Any]) -> None:
    meta = quick_results["metadata"]
    for key in ("timestamp", "python", "machine_cores", "git_commit", "samples"):
        assert meta[key], key
    assert meta["samples"] == {"cold_start": 2, "warm_intake": 2}

    cold = quick_results["cold_start"]
    assert sorted(cold) == [name for name in HANDLER_MODULES if name != "__init__"]
    for name, figures in cold.items():
        assert figures["median_ms"] > 0 and figures["floor_ms"] > 0, name
        assert figures["ratio"] == round(figures["median_ms"] / figures["floor_ms"], 2), name
        assert figures["cpu_ratio"] > 0, name
        assert "pydantic" in figures["third_party_packages"], name  # the floor loads what the handler loads
        assert "flexrestore" not in figures["third_party_packages"], name

    warm = quick_results["warm_intake"]
    for key in ("median_ms", "p95_ms", "bare_median_ms", "ratio", "cpu_ratio"):
        assert warm[key] > 0, key
    assert "5 s" in warm["notes"]  # how the API's wait for the Atlas job is handled
    intake, bare = warm["calls"]["intake"], warm["calls"]["bare"]
    assert intake["atlas"] == bare["atlas"] == {"getFlexCluster": 1, "listFlexBackupSnapshots": 1}
    assert intake["aws"] == bare["aws"]  # the comparison makes the same calls on both sides
    assert intake["aws"]["states:StartExecution"] == 1

    assert set(quick_results["transitions"]) == {"ok", "slow"}
    assert all(isinstance(n, int) and n > 0 for n in quick_results["transitions"].values())
    for scenario in ("ok", "slow"):
        calls = quick_results["calls_per_restore"][scenario]
        assert calls["atlas"]["createFlexRestoreJob"] == 1, scenario
        assert calls["atlas_total"] == sum(calls["atlas"].values())

    # Quick mode does not build the package: every function is there, without figures, and the notes say why.
    assert "IntakeFunction" in quick_results["package_bytes"]
    assert set(quick_results["package_bytes"].values()) == {None}
    assert "skipped" in quick_results["notes"]["package_bytes"]


def test_readme_quotes_the_committed_figures() -> None:
    bench = bench_module()
    committed = json.loads((REPO / "bench" / "results.json").read_text(encoding="utf-8"))
    assert not committed["metadata"]["quick"], "the committed figures come from a full make bench"
    assert sorted(committed["cold_start"]) == [name for name in HANDLER_MODULES if name != "__init__"]
    assert set(committed) >= {"warm_intake", "transitions", "calls_per_restore", "package_bytes", "notes"}
    assert bench.readme_block((REPO / "README.md").read_text(encoding="utf-8")) == bench.readme_figures(
        committed
    ), "README's figures differ from bench/results.json: run make bench (it rewrites both)"
