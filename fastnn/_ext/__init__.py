"""Compiled Cython kernels (built from src_ext/ at install time): a portable build here, and an
AVX2+FMA build of the same sources in fastnn._ext.avx2 where the compiler supports it."""
