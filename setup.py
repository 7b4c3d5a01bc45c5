"""Build the Cython kernels in src_ext/ into fastnn._ext, with OpenMP when the compiler has it.

Everything declarative lives in pyproject.toml; this file only describes the extensions, because
whether OpenMP is usable can only be learnt by asking the compiler.
"""
import os
import sys
import tempfile
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SRC = Path("src_ext")
MODULES = ["_linear", "_activations", "_losses"]


def _compiler_accepts(compiler, flags, source):
    """Compile and link a tiny program with `flags`; return True when both steps succeed."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as fh:
            fh.write(source)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=flags)
            compiler.link_executable(objs, os.path.join(tmp, "probe"), extra_postargs=flags)
        except Exception:  # any CompileError/LinkError means "not supported"
            return False
    return True


OPENMP_PROBE = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"


class BuildExtWithOptionalOpenMP(build_ext):
    """Add -fopenmp (or /openmp) when the compiler builds an OpenMP program, else build serial kernels."""

    def build_extensions(self):
        if self.compiler.compiler_type == "msvc":
            compile_flags, link_flags = ["/O2", "/openmp"], []
            base_flags = ["/O2"]
        else:
            base_flags = ["-O3", "-fno-math-errno"]
            compile_flags = base_flags + ["-fopenmp"]
            link_flags = ["-fopenmp"]
        use_openmp = os.environ.get("FASTNN_NO_OPENMP", "") == "" and _compiler_accepts(
            self.compiler, compile_flags if self.compiler.compiler_type == "msvc" else link_flags, OPENMP_PROBE
        )
        if not use_openmp:
            sys.stderr.write("fastnn: OpenMP not available, building single-threaded Cython kernels\n")
        for ext in self.extensions:
            ext.extra_compile_args = list(compile_flags if use_openmp else base_flags)
            ext.extra_link_args = list(link_flags if use_openmp else [])
        super().build_extensions()


def _extensions():
    from Cython.Build import cythonize

    exts = [
        Extension(f"fastnn._ext.{name}", [str(SRC / f"{name}.pyx")], define_macros=[("NPY_NO_DEPRECATED_API", "0")])
        for name in MODULES
    ]
    return cythonize(
        exts,
        language_level=3,
        include_path=[str(SRC)],
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "initializedcheck": False,
            "cdivision": True,
            "nonecheck": False,
        },
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExtWithOptionalOpenMP})
