"""Compiled Cython kernels (built from src_ext/ at install time): a portable build here, an AVX2+FMA
build of the same sources in fastnn._ext.avx2 and an AVX-512 build of some of them in fastnn._ext.avx512
where the compiler supports it."""
