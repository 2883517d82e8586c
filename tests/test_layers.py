"""The import-layer check: edgeprune's stages import only the stages before them.

The contract lives in ``[tool.importlinter]`` of pyproject.toml and is explained in
docs/architecture.md. The second test proves the contract is not vacuous: a scratch copy of the package
with one deliberate upward import (a low stage importing ``edgeprune.pipeline`` or ``edgeprune.cli``) must
fail the check.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = shutil.which("lint-imports")

pytestmark = pytest.mark.skipif(LINT_IMPORTS is None, reason="import-linter is not installed")


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``lint-imports`` in ``cwd`` (which holds pyproject.toml and the edgeprune package)."""
    assert LINT_IMPORTS is not None
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_import_layers_are_kept() -> None:
    result = _lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("upper", ["edgeprune.pipeline", "edgeprune.cli"])
def test_an_upward_import_breaks_the_contract(tmp_path: Path, upper: str) -> None:
    if (
        not (REPO_ROOT / (upper.replace(".", "/") + ".py")).exists()
        and not (REPO_ROOT / upper.replace(".", "/") / "__init__.py").exists()
    ):
        pytest.skip(f"{upper} has not landed yet")
    shutil.copytree(
        REPO_ROOT / "edgeprune", tmp_path / "edgeprune", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy2(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    low_module = tmp_path / "edgeprune" / "models" / "registry.py"
    low_module.write_text(low_module.read_text() + f"\nimport {upper}  # deliberate upward import\n")

    result = _lint_imports(tmp_path)

    assert result.returncode != 0
    assert f"edgeprune.models is not allowed to import {upper}" in result.stdout


def test_every_package_has_an_init() -> None:
    """A folder of modules without ``__init__.py`` is a namespace package, which import-linter does not
    analyse: upward imports inside it would pass unnoticed."""
    package_root = REPO_ROOT / "edgeprune"
    missing = sorted(
        str(folder.relative_to(REPO_ROOT))
        for folder in [package_root, *package_root.rglob("*")]
        if folder.is_dir()
        and folder.name != "__pycache__"
        and any(folder.glob("*.py"))
        and not (folder / "__init__.py").exists()
    )
    assert missing == [], f"add an __init__.py to: {', '.join(missing)}"
