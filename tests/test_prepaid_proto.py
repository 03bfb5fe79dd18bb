"""The gRPC modules are a build output: generated from proto/ in a clean
checkout, never tracked by git, and current with their .proto files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_clean_checkout_generates_the_grpc_modules_on_first_import(tmp_path):
    # The package as a checkout has it (built kernels included), without any generated module.
    shutil.copytree(ROOT / "proto", tmp_path / "proto")
    shutil.copytree(ROOT / "rating", tmp_path / "rating",
                    ignore=shutil.ignore_patterns("*_pb2.py", "*_pb2_grpc.py", "*_pb2.pyi", "__pycache__"))
    assert not list((tmp_path / "rating" / "v1").glob("*_pb2*.py"))
    code = (
        "from rating.v1 import rating_pb2, rating_pb2_grpc\n"
        "names = sorted(rating_pb2.DESCRIPTOR.services_by_name)\n"
        "print(names, rating_pb2.DeductRequest(batch_id='b').batch_id)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['PrepaidService', 'RatingService'] b"
    assert (tmp_path / "rating" / "v1" / "rating_pb2_grpc.py").exists()


def test_generated_modules_are_ignored_by_git_and_not_tracked():
    from rating.v1 import rating_pb2  # noqa: F401 - makes sure the files exist

    generated = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "rating" / "v1").glob("*_pb2*"))
    assert generated
    ignored = subprocess.run(["git", "check-ignore", *generated], cwd=ROOT, capture_output=True, text=True)
    assert sorted(ignored.stdout.split()) == generated
    tracked = subprocess.run(["git", "ls-files", "rating/v1", "proto"], cwd=ROOT, capture_output=True,
                             text=True)
    assert not [name for name in tracked.stdout.split() if "_pb2" in name]


def test_the_generated_modules_are_current_with_their_protos():
    import rating.v1  # noqa: F401 - regenerates when stale
    from rating import _protogen

    assert not _protogen.is_stale()


def test_the_standard_grpc_packages_import_beside_the_client():
    # The server once vendored health.proto: importing grpc_health next to it was a duplicate symbol.
    for code in ("import grpc_health.v1.health_pb2, grpc_reflection.v1alpha.reflection_pb2, "
                 "rating.client.calls",
                 "import rating.client.calls, rating.server.app, grpc_health.v1.health_pb2"):
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]


def test_generated_modules_of_removed_protos_are_removed(tmp_path):
    from rating import _protogen

    shutil.copytree(ROOT / "proto", tmp_path / "proto")
    orphan = tmp_path / "rating" / "v1" / "health_pb2.py"
    orphan.parent.mkdir(parents=True)
    orphan.write_text("raise ImportError('a module left from a removed proto')\n")
    assert _protogen.is_stale(tmp_path / "proto", tmp_path)
    _protogen.generate(tmp_path / "proto", tmp_path)
    assert not orphan.exists() and (tmp_path / "rating" / "v1" / "rating_pb2.py").exists()
    assert not _protogen.is_stale(tmp_path / "proto", tmp_path)
