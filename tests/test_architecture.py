"""The package's layers hold: import-linter's contracts, and MLflow only in recae.tracking."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "recae"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


@pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed")
def test_import_contracts_hold() -> None:
    """The layers, forbidden imports and acyclic-packages contracts of pyproject.toml."""
    done = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_only_the_tracking_package_imports_mlflow() -> None:
    """Not the other layers, nor the tests, benchmarks or notebooks: they read MLflow through recae.tracking."""
    statement = re.compile(r'(?:^|")\s*(?:import|from)\s+mlflow\b', re.MULTILINE)  # .py lines and notebook strings
    sources = [p for folder in ("recae", "tests", "benchmarks", "notebooks") for p in (ROOT / folder).rglob("*.py")]
    sources += list((ROOT / "notebooks").rglob("*.ipynb"))
    importers = sorted(str(path.relative_to(ROOT)) for path in sources if statement.search(path.read_text()))
    assert importers, "recae.tracking should be where mlflow is imported"
    assert all(name.startswith("recae/tracking/") for name in importers), importers


def test_no_module_is_over_about_400_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 450
    }
    assert not long, long


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """A function's lines, less its docstring (numpy-style docstrings are long on purpose)."""
    lines = node.end_lineno - node.lineno + 1
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        lines -= first.end_lineno - first.lineno + 1
    return lines


def test_no_function_has_over_about_60_lines_of_code() -> None:
    long = {
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name}": n
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (n := _code_lines(node)) > 60
    }
    assert not long, long
