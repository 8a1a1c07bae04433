"""`make package` says clearly what is missing instead of building with the wrong interpreter."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.infrastructure.checks import REPO


def test_package_without_python_3_13_explains_and_fails(tmp_path: Path) -> None:
    # A PATH with the basic tools only: no python3.13, no pyenv, no sam.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "env"):
        for folder in ("/usr/bin", "/bin"):
            if os.path.exists(f"{folder}/{tool}"):
                os.symlink(f"{folder}/{tool}", bin_dir / tool)
                break
    answer = subprocess.run(
        ["bash", str(REPO / "tests" / "infrastructure" / "package.sh")],
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert answer.returncode != 0
    assert "no python3.13 interpreter found" in answer.stderr
    assert "Nothing was built" in answer.stderr
    assert answer.stdout == ""  # it stopped before building anything
