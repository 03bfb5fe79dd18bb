"""Generate the gRPC/protobuf Python modules from proto/ (a build output, never committed).

`proto/rating/v1/*.proto` become `rating/v1/*_pb2.py`, `*_pb2_grpc.py` and
`*_pb2.pyi` (git-ignored). `setup.py` runs `generate()` when it builds the
package; in a source checkout `rating.v1` calls `ensure()` on import, which
regenerates when a module is missing or older than its .proto. Files are
written to a temporary folder first and moved into place one by one, so a
concurrent import never sees half a file.

This module imports nothing from `rating` so that setup.py can run it alone.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PACKAGE_DIR = "rating/v1"
SUFFIXES = ("_pb2.py", "_pb2_grpc.py", "_pb2.pyi")


def proto_files(proto_root: Path = PROTO_ROOT) -> list[Path]:
    return sorted((proto_root / PACKAGE_DIR).glob("*.proto"))


def outputs_of(proto: Path, out_root: Path = ROOT) -> list[Path]:
    stem = proto.stem
    return [out_root / PACKAGE_DIR / f"{stem}{suffix}" for suffix in SUFFIXES]


def orphans(proto_root: Path = PROTO_ROOT, out_root: Path = ROOT) -> list[Path]:
    """Generated modules whose .proto is gone (they could clash with a package's protos)."""
    stems = {p.stem for p in proto_files(proto_root)}
    return [out for suffix in SUFFIXES for out in (out_root / PACKAGE_DIR).glob(f"*{suffix}")
            if out.name.removesuffix(suffix) not in stems]


def is_stale(proto_root: Path = PROTO_ROOT, out_root: Path = ROOT) -> bool:
    if orphans(proto_root, out_root):
        return True
    for proto in proto_files(proto_root):
        mtime = proto.stat().st_mtime
        for out in outputs_of(proto, out_root):
            if not out.exists() or out.stat().st_mtime < mtime:
                return True
    return False


def generate(proto_root: Path = PROTO_ROOT, out_root: Path = ROOT) -> list[Path]:
    """Run protoc (grpcio-tools) over every .proto; returns the files written."""
    try:
        import grpc_tools
        from grpc_tools import protoc
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "generating the gRPC modules needs grpcio-tools: pip install 'rating[server]'"
        ) from exc
    protos = proto_files(proto_root)
    if not protos:
        raise RuntimeError(f"no .proto files under {proto_root / PACKAGE_DIR}")
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    (out_root / PACKAGE_DIR).mkdir(parents=True, exist_ok=True)
    for orphan in orphans(proto_root, out_root):
        orphan.unlink(missing_ok=True)
    written = []
    with tempfile.TemporaryDirectory(dir=out_root / PACKAGE_DIR, prefix=".protogen-") as tmp:
        args = [
            "grpc_tools.protoc", f"-I{proto_root}", f"-I{well_known}",
            f"--python_out={tmp}", f"--grpc_python_out={tmp}", f"--pyi_out={tmp}",
            *(str(p.relative_to(proto_root)) for p in protos),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {', '.join(p.name for p in protos)}")
        for proto in protos:
            for out in outputs_of(proto, out_root):
                os.replace(Path(tmp) / PACKAGE_DIR / out.name, out)  # atomic per file
                written.append(out)
    return written


def ensure() -> None:
    """Regenerate in a source checkout when the generated modules are out of date."""
    if proto_files() and is_stale():
        generate()


if __name__ == "__main__":
    for path in generate():
        print(path.relative_to(ROOT), file=sys.stdout)
