"""Build the Cython kernels in src_ext/ into fastnn._ext, with OpenMP when the compiler has it.

Everything declarative lives in pyproject.toml; this file only describes the extensions, because
what the compiler supports can only be learnt by asking it. On x86-64 the kernel modules are built
twice: a portable build (fastnn._ext) and an AVX2+FMA build (fastnn._ext.avx2) that the Cython
backend picks at import time when the CPU has those instructions; the modules that measurably gain
from AVX-512 (AVX512_MODULES) a third time, as fastnn._ext.avx512, picked on CPUs with AVX-512
F/BW/DQ/VL. A wheel therefore stays portable while running vectorized code where it can.
FASTNN_NO_AVX2 / FASTNN_NO_AVX512 (environment, at build time) leave out a vectorized build.
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
AVX512_PACKAGE = "fastnn._ext.avx512"
# The AVX-512 build (512-bit vectors in the hand-vectorized kernels and the compiler's loops) of the modules
# where it measured >= 10% faster than AVX2 on an AVX-512 Xeon (bench/compare_builds.py): the fused
# MLP and ConvBase epochs and compiled inference, conv1d, sigmoid. The others gained nothing (or lost),
# so they are not built a third time: the backend takes them from the AVX2 build.
AVX512_MODULES = ["_training", "_cnn_training", "_conv", "_activations"]
IS_X86_64 = platform.machine().lower() in ("x86_64", "amd64")

OPENMP_PROBE = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"
AVX2_PROBE = ("#include <immintrin.h>\nint main(void) { __m256 a = _mm256_set1_ps(1.f);\n"
              "a = _mm256_fmadd_ps(a, a, a); return (int)_mm256_cvtss_f32(a) == 2 ? 0 : 1; }\n")
# F (512-bit FMA), BW (byte masks), DQ, VL (masked 256-bit ops): what the flags below let GCC use.
AVX512_PROBE = ("#include <immintrin.h>\nint main(void) { __m512 a = _mm512_set1_ps(1.f);\n"
                "__mmask64 m = _mm512_cmpeq_epi8_mask(_mm512_set1_epi8(1), _mm512_set1_epi8(1));\n"
                "__m256d d = _mm256_maskz_mov_pd((__mmask8)m, _mm256_set1_pd(1.0));\n"
                "__m512d q = _mm512_cvtepi64_pd(_mm512_set1_epi64(1));\n"
                "a = _mm512_fmadd_ps(a, a, a); return _mm512_reduce_add_ps(a) == 32.f && _mm256_cvtsd_f64(d) == 1.0\n"
                "&& _mm512_reduce_add_pd(q) == 8.0 ? 0 : 1; }\n")


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


def _variant_wanted(compiler, env_var, flags, probe, what):
    """True unless `env_var` is set or the compiler fails `probe` with `flags` (then says why on stderr)."""
    if os.environ.get(env_var):
        why = f"{env_var} is set"
    elif not _compiler_accepts(compiler, flags, probe):
        why = f"compiler cannot target {what}"
    else:
        return True
    sys.stderr.write(f"fastnn: {why}, not building the {what} kernels\n")
    return False


class BuildExtWithProbes(build_ext):
    """Add OpenMP when the compiler builds an OpenMP program; drop a vectorized build it cannot make."""

    def build_extensions(self):
        msvc = self.compiler.compiler_type == "msvc"
        # -fno-trapping-math lets the compiler turn selects into blends (vector_exp.h needs it to vectorize);
        # it changes no result, only the assumption that floating-point exceptions trap. -g0 overrides the
        # interpreter's default -g: debug information made the modules 5x larger (11 MB wheel, 2 MB without).
        base = ["/O2"] if msvc else ["-O3", "-fno-math-errno", "-fno-trapping-math", "-g0"]
        openmp = ["/openmp"] if msvc else ["-fopenmp"]
        avx2 = ["/arch:AVX2"] if msvc else ["-mavx2", "-mfma"]
        # gcc's 512-bit preference is a tuning default that some -mtune settings turn to 256: ask for it.
        avx512 = ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx2", "-mfma", "-mprefer-vector-width=512"]
        variant_flags = {AVX2_PACKAGE: avx2, AVX512_PACKAGE: avx512}

        use_openmp = not os.environ.get("FASTNN_NO_OPENMP") and _compiler_accepts(self.compiler, openmp, OPENMP_PROBE)
        if not use_openmp:
            why = "FASTNN_NO_OPENMP is set" if os.environ.get("FASTNN_NO_OPENMP") else "OpenMP not available"
            sys.stderr.write(f"fastnn: {why}, building single-threaded Cython kernels\n")
        wanted = {AVX2_PACKAGE: _variant_wanted(self.compiler, "FASTNN_NO_AVX2", avx2, AVX2_PROBE, "AVX2+FMA"),
                  # MSVC: no vector extensions in the kernels, no CPU check in _cpu (it says no AVX-512).
                  AVX512_PACKAGE: not msvc and _variant_wanted(self.compiler, "FASTNN_NO_AVX512", avx512, AVX512_PROBE,
                                                               "AVX-512")}
        self.extensions = [ext for ext in self.extensions if wanted.get(ext.name.rpartition(".")[0], True)]

        for ext in self.extensions:
            flags = base + (openmp if use_openmp else []) + variant_flags.get(ext.name.rpartition(".")[0], [])
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
        extensions += build(AVX512_PACKAGE, AVX512_MODULES, "build/cython-avx512")
    return extensions


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExtWithProbes})
