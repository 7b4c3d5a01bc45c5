"""Build the Cython kernels in src_ext/ into fastnn._ext, with OpenMP when the compiler has it.

Everything declarative lives in pyproject.toml; this file only describes the extensions, because
what the compiler supports can only be learnt by asking it. On x86-64 the kernel modules are built
twice: a portable build (fastnn._ext) and an AVX2+FMA build (fastnn._ext.avx2) that the Cython
backend picks at import time when the CPU has those instructions. A wheel therefore stays portable
while running vectorized code where it can.
"""
import os
import platform
import sys
import tempfile
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SRC = Path("src_ext")
KERNEL_MODULES = ["_linear", "_activations", "_losses", "_gram", "_perceptron", "_training", "_conv", "_cnn_training",
                  "_conv2d"]
HELPER_MODULES = ["_cpu"]  # portable build only
AVX2_PACKAGE = "fastnn._ext.avx2"
IS_X86_64 = platform.machine().lower() in ("x86_64", "amd64")

OPENMP_PROBE = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"
AVX2_PROBE = ("#include <immintrin.h>\nint main(void) { __m256 a = _mm256_set1_ps(1.f);\n"
              "a = _mm256_fmadd_ps(a, a, a); return (int)_mm256_cvtss_f32(a) == 2 ? 0 : 1; }\n")


def _compiler_accepts(compiler, flags, source):
    """Compile and link a tiny program with `flags`; True when both steps succeed."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as fh:
            fh.write(source)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=flags)
            compiler.link_executable(objs, os.path.join(tmp, "probe"), extra_postargs=flags)
        except Exception:  # CompileError, LinkError: not supported
            return False
    return True


class BuildExtWithProbes(build_ext):
    """Add OpenMP when the compiler builds an OpenMP program; drop the AVX2 build when it cannot."""

    def build_extensions(self):
        msvc = self.compiler.compiler_type == "msvc"
        # -fno-trapping-math lets the compiler turn selects into blends (vector_exp.h needs it to vectorize);
        # it changes no result, only the assumption that floating-point exceptions trap. -g0 overrides the
        # interpreter's default -g: debug information made the modules 5x larger (11 MB wheel, 2 MB without).
        base = ["/O2"] if msvc else ["-O3", "-fno-math-errno", "-fno-trapping-math", "-g0"]
        openmp = ["/openmp"] if msvc else ["-fopenmp"]
        avx2 = ["/arch:AVX2"] if msvc else ["-mavx2", "-mfma"]

        use_openmp = not os.environ.get("FASTNN_NO_OPENMP") and _compiler_accepts(self.compiler, openmp, OPENMP_PROBE)
        use_avx2 = not os.environ.get("FASTNN_NO_AVX2") and _compiler_accepts(self.compiler, avx2, AVX2_PROBE)
        if not use_openmp:
            why = "FASTNN_NO_OPENMP is set" if os.environ.get("FASTNN_NO_OPENMP") else "OpenMP not available"
            sys.stderr.write(f"fastnn: {why}, building single-threaded Cython kernels\n")
        if not use_avx2:
            why = "FASTNN_NO_AVX2 is set" if os.environ.get("FASTNN_NO_AVX2") else "compiler cannot target AVX2+FMA"
            sys.stderr.write(f"fastnn: {why}, building the portable kernels only\n")
            self.extensions = [ext for ext in self.extensions if not ext.name.startswith(AVX2_PACKAGE)]

        for ext in self.extensions:
            flags = base + (openmp if use_openmp else []) + (avx2 if ext.name.startswith(AVX2_PACKAGE) else [])
            ext.extra_compile_args = flags
            ext.extra_link_args = ([] if msvc or not use_openmp else openmp) + ([] if msvc else ["-Wl,--strip-debug"])
        if self.parallel is None:  # the modules compile independently: use every core unless told otherwise
            self.parallel = os.cpu_count() or 1
        # Parallel jobs race to create the shared object directories (distutils' mkpath remembers a
        # directory as made before it exists): make them all first.
        for ext in self.extensions:
            for source in ext.sources:
                os.makedirs(os.path.join(self.build_temp, os.path.dirname(source)), exist_ok=True)
        super().build_extensions()


def _extensions():
    from Cython.Build import cythonize

    directives = {"boundscheck": False, "wraparound": False, "initializedcheck": False,
                  "cdivision": True, "nonecheck": False}

    def build(package, names, build_dir):
        exts = [Extension(f"{package}.{name}", [str(SRC / f"{name}.pyx")], include_dirs=[str(SRC)]) for name in names]
        # One build_dir per variant: both variants compile the same .pyx, so their C files must not collide.
        return cythonize(exts, language_level=3, include_path=[str(SRC)], compiler_directives=directives,
                         build_dir=build_dir, nthreads=os.cpu_count() or 1)

    extensions = build("fastnn._ext", KERNEL_MODULES + HELPER_MODULES, "build/cython")
    if IS_X86_64:
        extensions += build(AVX2_PACKAGE, KERNEL_MODULES, "build/cython-avx2")
    return extensions


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExtWithProbes})
