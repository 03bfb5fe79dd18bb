"""Build the Cython kernels in ext/ as rating._ext.<name>.

Compiler directives live here and nowhere else. RATING_DEBUG=1 builds with
bounds checks (at each kernel's entry by Cython, inside the loops by the
kernels' own DEBUG_CHECKS, through the RATING_DEBUG macro), wraparound checks,
Python division semantics and line tracing, for fuzzing and debugging. The
kernels must give the same results either way: 128-bit arithmetic lives in C
helpers (ext/_types.pxd), never in Cython code that `cdivision` would change.
"""

import os
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_py import build_py

DEBUG = os.environ.get("RATING_DEBUG", "") not in ("", "0")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "nonecheck": False,
    "embedsignature": True,
    "linetrace": DEBUG,
}

compile_args = ["-O0", "-g"] if DEBUG else ["-O3"]
compile_args += ["-Wall", "-Wno-unused-function", "-Wno-unreachable-code"]
macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
if DEBUG:
    macros += [("CYTHON_TRACE_NOGIL", "1"), ("RATING_DEBUG", "1")]

extensions = [
    Extension(
        f"rating._ext.{pyx.stem}",
        [str(pyx)],
        include_dirs=[np.get_include(), "ext"],
        define_macros=macros,
        extra_compile_args=compile_args,
    )
    for pyx in sorted(Path("ext").glob("*.pyx"))
]


class BuildPyWithProtos(build_py):
    """Generate the gRPC modules (rating/v1/*_pb2*.py) from proto/ first: they are build outputs."""

    def run(self):
        import runpy

        runpy.run_path("rating/_protogen.py")["generate"]()
        super().run()


setup(
    ext_modules=cythonize(extensions, compiler_directives=directives, include_path=["ext"]),
    cmdclass={"build_py": BuildPyWithProtos},
)
