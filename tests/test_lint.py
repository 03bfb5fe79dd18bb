"""Lint and type checks run with the tests, so CI refuses what they refuse."""

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_ruff_finds_nothing():
    result = run_tool("ruff", "check", "rating", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing():
    result = run_tool("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_stages_import_only_the_stages_below_them():
    result = subprocess.run([str(Path(sys.executable).with_name("lint-imports"))], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_module_of_the_package_is_in_a_layer():
    """A new stage cannot slip past the layering: each top-level part of `rating` is named."""
    contract = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    layered = {name.strip() for layer in contract["layers"] for name in layer.split("|")}
    outside = {"rating._ext", "rating.v1", "rating._protogen", "rating.__main__"}
    parts = {f"rating.{p.stem}" for p in (ROOT / "rating").iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()}
    assert parts - outside == layered
