"""The kernels of fastnn._ext compiled again for CPUs with AVX2 and FMA (x86-64-v3), when the build could."""
