"""How the suite measures: round-robin timing, medians and spread, peak
memory, and the machine the figures come from.

Timing: after one warm-up run (the correctness check), the implementations
of a point run in turn, run 1 of each, then run 2 of each, ..., so a burst of
noise on a shared machine lands on all of them rather than on one. A run
slower than `slow_run_s` on warm-up gets `min_repeats` runs instead of
`repeats`. Figures are medians; the spread is the interquartile range and
the min/max of the runs.

Peak memory: the peak of new allocations during the warm-up run, beyond
its inputs: numpy and Python allocations through `tracemalloc` plus the
Arrow memory pool's high-water mark (a proxy pool per run). Cython kernels
allocate nothing themselves (their buffers are numpy arrays).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import subprocess
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
_PROXY_POOLS: list[pa.MemoryPool] = []


@dataclass
class Impl:
    """One implementation at one point: what to run and how much work it is."""

    run: Callable[[], object]
    items: int  # readings (or units) one run processes
    sampled: bool = False  # runs on a sample of the point's data (the reference)
    peak: bool = True  # measure its peak memory


def time_round_robin(impls: dict[str, Impl], warmup_s: dict[str, float], *, repeats: int,
                     min_repeats: int, slow_run_s: float) -> dict[str, list[float]]:
    """Seconds of each run of each implementation, runs interleaved."""
    wanted = {name: (min_repeats if warmup_s.get(name, 0.0) > slow_run_s else repeats) for name in impls}
    runs: dict[str, list[float]] = {name: [] for name in impls}
    for round_index in range(max(wanted.values(), default=0)):
        for name, impl in impls.items():
            if round_index < wanted[name]:
                start = time.perf_counter()
                impl.run()
                runs[name].append(time.perf_counter() - start)
    return runs


def timed(run: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    result = run()
    return result, time.perf_counter() - start


def run_with_peak(run: Callable[[], object]) -> tuple[object, float, int]:
    """One run: its result, its seconds and its new allocations at their peak
    (tracemalloc + Arrow pool). The seconds include tracemalloc's overhead
    (small for array code, large for the Decimal reference): a warm-up only."""
    base = pa.default_memory_pool()
    pool = pa.proxy_memory_pool(base)
    # Buffers allocated through a pool free themselves through it, and results
    # (or state a scenario caches, like a ready Rater) outlive the run: the
    # proxy must live as long as the process. Each is a few bytes.
    _PROXY_POOLS.append(pool)
    pa.set_memory_pool(pool)
    tracemalloc.start()
    try:
        start = time.perf_counter()
        result = run()
        seconds = time.perf_counter() - start
        _, traced_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        pa.set_memory_pool(base)
    return result, seconds, traced_peak + pool.max_memory()


def figure(items: int, unit: str, runs_s: list[float], *, sampled: bool = False) -> dict:
    """One figure with its unit, runs, median and spread."""
    median_s = statistics.median(runs_s)
    if len(runs_s) >= 2:
        q1, _, q3 = statistics.quantiles(runs_s, n=4, method="inclusive")
    else:
        q1 = q3 = runs_s[0]
    return {
        "unit": unit,
        "median": items / median_s,
        "items": items,
        "sampled": sampled,
        "median_s": median_s,
        "runs_s": runs_s,
        "spread": {
            "min_s": min(runs_s),
            "max_s": max(runs_s),
            "q1_s": q1,
            "q3_s": q3,
            "iqr_pct": 100 * (q3 - q1) / median_s,
        },
    }


def memory_available_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _memory_total_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return sorted(flags & {"avx", "avx2", "avx512f", "sse4_2", "neon"})
    except OSError:
        pass
    return []


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.rstrip() if out.returncode == 0 else None  # porcelain lines may start with " "


def machine() -> dict:
    """Where and with what the figures were measured."""
    # dirty: tracked changes, or new files where code that runs lives
    status = _git("status", "--porcelain", "--untracked-files=all", "--", "rating", "ext", "bench",
                  "setup.py", "pyproject.toml")
    packages = ("rating", "numpy", "pyarrow", "cython", "matplotlib", "hdrhistogram",
                "pytest-benchmark", "redis", "asyncpg", "grpcio")
    return {
        "cpu": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "cores": os.cpu_count(),
        "memory_bytes": _memory_total_bytes(),
        "memory_available_bytes": memory_available_bytes(),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "versions": {name: _version(name) for name in packages},
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "git_dirty_files": [line[3:] for line in (status or "").splitlines()][:50],
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
