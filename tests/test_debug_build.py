"""RATING_DEBUG=1 builds the kernels with bounds checks inside their loops
(and Python division semantics); the kernel tests pass on that build.

The build happens in a copy of the tree so the normal (optimised) build in
place is left alone.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow
KERNEL_TESTS = ["tests/test_consumption.py", "tests/test_engine.py", "tests/test_apportion.py",
                "tests/test_int128.py"]

# Each case breaks one contract of a kernel's caller; the debug build must
# answer IndexError, where the release build would read or write out of bounds.
PROBES = """
import json
import numpy as np
from rating._ext._apportion import split_largest_remainder
from rating._ext._consumption import accumulate, survey
from rating.consumption.kernel import STATE_DTYPE

def kernel_run(meter, *, states=1, buckets=1, bucket_base=0, timeline_end=1):
    state = np.zeros(states, STATE_DTYPE)
    settings = {"is_interval": 1, "interval_us": 10, "bucket_base": bucket_base, "timeline_end": timeline_end}
    for field, value in settings.items():
        state[field][:1] = value
    one = np.zeros(1, np.int64)
    accumulate(np.array([meter], np.int32), np.array([50], np.int64), np.array([1], np.int64),
               state, np.array([0, 100], np.int64), np.zeros(2, np.int32),
               np.full(buckets, np.iinfo(np.int64).min), one, np.zeros(1, np.uint8),
               np.zeros(2, np.int64))

cases = {
    "entry": lambda: kernel_run(0, states=0),
    "meter index": lambda: kernel_run(5),
    "bucket": lambda: kernel_run(0, bucket_base=5),
    "segment": lambda: kernel_run(0, timeline_end=3),
    "survey": lambda: survey(np.array([0, 3], np.int32), np.zeros(2, np.int64), np.zeros(1, np.uint8)),
    "apportion": lambda: split_largest_remainder(
        np.array([0, 5], np.int64), np.array([10], np.int64), np.ones(2, np.int64),
        np.arange(2, dtype=np.int64), np.zeros(2, np.int64)),
    "valid": lambda: kernel_run(0),
}
result = {}
for name, run in cases.items():
    try:
        run()
        result[name] = "ran"
    except IndexError as error:
        result[name] = "IndexError: " + str(error)
print(json.dumps(result))
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


def test_debug_build_checks_bounds_inside_the_loops(debug_tree):
    probe = subprocess.run([sys.executable, "-c", PROBES], cwd=debug_tree, capture_output=True,
                           text=True, timeout=60)
    assert probe.returncode == 0, probe.stdout + probe.stderr
    result = json.loads(probe.stdout)
    assert result.pop("valid") == "ran"  # the probes' layout is sound but for the one broken part
    assert result["entry"].startswith("IndexError: Out of bounds")  # the memoryview check
    assert "reading row 0: meter index outside the state array" in result["meter index"]
    assert "reading row 0: bucket outside the bucket array" in result["bucket"]
    assert "reading row 0: timeline segment outside the bounds array" in result["segment"]
    assert "survey, reading row 1: meter index outside the state array" in result["survey"]
    assert "split_largest_remainder, group 0: members outside the arrays" in result["apportion"]


def test_kernel_tests_pass_on_the_debug_build(debug_tree):
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *KERNEL_TESTS],
                            cwd=debug_tree, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
