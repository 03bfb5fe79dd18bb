"""RATING_DEBUG=1 builds the kernels with bounds checks; the kernel tests pass on that build.

The build happens in a copy of the tree so the normal (optimised) build in
place is left alone.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KERNEL_TESTS = ["tests/test_consumption.py", "tests/test_engine.py", "tests/test_apportion.py"]

BOUNDS_PROBE = """
import numpy as np
from rating._ext._consumption import accumulate
from rating.consumption import STATE_DTYPE
one = np.zeros(1, np.int64)
try:
    accumulate(np.zeros(1, np.int32), one, one, np.zeros(0, STATE_DTYPE), one,
               np.zeros(1, np.int32), one, one, np.zeros(1, np.uint8), one)
except IndexError as error:
    print("bounds checked:", error)
"""


@pytest.fixture(scope="module")
def debug_tree(tmp_path_factory) -> Path:
    tree = tmp_path_factory.mktemp("debug-build")
    for name in ("rating", "ext", "tests", "bench", "docs", "examples"):
        shutil.copytree(ROOT / name, tree / name,
                        ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__"))
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    env = {**os.environ, "RATING_DEBUG": "1"}
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=tree, env=env,
                   check=True, capture_output=True, timeout=600)
    return tree


def test_debug_build_checks_bounds(debug_tree):
    probe = subprocess.run([sys.executable, "-c", BOUNDS_PROBE], cwd=debug_tree, capture_output=True,
                           text=True, timeout=60)
    assert "bounds checked" in probe.stdout, probe.stdout + probe.stderr


def test_kernel_tests_pass_on_the_debug_build(debug_tree):
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *KERNEL_TESTS],
                            cwd=debug_tree, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
