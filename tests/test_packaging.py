"""The sdist builds a wheel in a clean environment, and the wheel, installed in
another clean environment, works from outside the source tree.

The source tree as a fresh clone has it (git's tracked and new files) is
copied, its sdist built, and a wheel built from that sdist in a new venv that
holds only the build requirements of pyproject.toml (`pip wheel
--no-build-isolation`, the requirements installed from PyPI or pip's cache).
The wheel goes into a second new venv; `rating demo` runs there in an empty
folder. The wheel must hold every module of rating/, the generated gRPC
modules and the compiled kernels, and its declared grpcio/protobuf floors
must satisfy the generated code: the test installs exactly those floors and
imports it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from rating._protogen import SUFFIXES

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow
STEP_TIMEOUT_S = 600


def run(*args, cwd: Path, timeout: float = STEP_TIMEOUT_S) -> str:
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def clean_venv(path: Path) -> Path:
    """A venv without pip (fast to make): this interpreter's pip installs into it (--python)."""
    run(sys.executable, "-m", "venv", "--without-pip", path, cwd=path.parent)
    return path / "bin" / "python"


def pip(python: Path, *args, cwd: Path) -> str:
    return run(sys.executable, "-m", "pip", "--python", python, "--disable-pip-version-check", *args,
               cwd=cwd)


def source_files() -> list[str]:
    listed = run("git", "ls-files", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    return [name for name in listed.splitlines() if (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    for name in source_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    # The sdist step only packs files (setup.py needs Cython and numpy, both here).
    run(sys.executable, "-m", "build", "--sdist", "--no-isolation", "--skip-dependency-check",
        "--outdir", work / "dist", source, cwd=work)
    (sdist,) = (work / "dist").glob("rating-*.tar.gz")

    build_python = clean_venv(work / "build-venv")
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    pip(build_python, "install", "-q", *requires, cwd=work)
    pip(build_python, "wheel", "-q", "--no-build-isolation", "--no-deps", "-w", work / "dist", sdist,
        cwd=work)
    (wheel,) = (work / "dist").glob("rating-*.whl")

    python = clean_venv(work / "venv")
    pip(python, "install", "-q", wheel, cwd=work)
    return {"work": work, "sdist": sdist, "wheel": wheel, "python": python}


def test_the_sdist_holds_the_kernels_and_protos_but_no_build_outputs(built):
    with tarfile.open(built["sdist"]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    tracked = set(source_files())
    for wanted in ("setup.py", "pyproject.toml", "MANIFEST.in"):
        assert wanted in names
    needed = {n for n in tracked if n.startswith(("ext/", "proto/")) or
              (n.startswith("rating/") and n.endswith((".py", ".pyi", "py.typed")))}
    assert needed <= names, sorted(needed - names)
    outputs = [n for n in names if n.endswith((".so", ".c")) or re.search(r"_pb2(_grpc)?\.pyi?$", n)]
    assert outputs == []


def test_the_wheel_holds_every_module_of_the_source_tree(built):
    with zipfile.ZipFile(built["wheel"]) as wheel:
        names = set(wheel.namelist())
    modules = {n for n in source_files() if n.startswith("rating/") and n.endswith((".py", ".pyi"))}
    assert modules <= names, sorted(modules - names)
    protos = sorted((ROOT / "proto" / "rating" / "v1").glob("*.proto"))
    generated = {f"rating/v1/{p.stem}{suffix}" for p in protos for suffix in SUFFIXES}
    assert generated <= names, sorted(generated - names)
    for pyx in sorted((ROOT / "ext").glob("*.pyx")):
        assert any(re.fullmatch(rf"rating/_ext/{pyx.stem}\.cpython-.*\.so", n) for n in names), pyx.name
    assert "rating/py.typed" in names


def test_rating_demo_runs_from_the_installed_wheel_outside_the_source_tree(built, tmp_path):
    python = built["python"]
    where = run(python, "-c", "import rating; print(rating.__file__)", cwd=tmp_path)
    assert Path(where.strip()).is_relative_to(built["work"] / "venv"), where
    result = subprocess.run([python.parent / "rating", "demo"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=STEP_TIMEOUT_S)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Anomalies:" in result.stdout, result.stdout[-2000:]
    assert list(tmp_path.iterdir()) == []  # nothing written where it ran


def declared_floor(metadata: str, package: str) -> str:
    # e.g. "Requires-Dist: protobuf<8,>=7.35.1; extra == \"server\"" (no other name may follow)
    match = re.search(rf"^Requires-Dist: {package}[<>=!~,\d. ]*?>=([\d.]+)", metadata, re.MULTILINE)
    assert match, f"no floor for {package}"
    return match.group(1)


def test_the_declared_grpc_floors_run_the_generated_code(built):
    with zipfile.ZipFile(built["wheel"]) as wheel:
        (metadata_name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = wheel.read(metadata_name).decode()
    assert re.search(r"^Requires-Python: >=3\.11$", metadata, re.MULTILINE)
    grpcio, protobuf = declared_floor(metadata, "grpcio"), declared_floor(metadata, "protobuf")
    python = clean_venv(built["work"] / "floors-venv")
    pip(python, "install", "-q", built["wheel"], f"grpcio=={grpcio}", f"protobuf=={protobuf}",
        cwd=built["work"])
    run(python, "-c", "import rating.v1.rating_pb2, rating.v1.rating_pb2_grpc", cwd=built["work"])
