"""Those kernel modules of fastnn._ext that gain from AVX-512 (F, BW, DQ, VL; 512-bit vectors), compiled again
for CPUs that have it, when the build could; the Cython backend takes the other modules from fastnn._ext.avx2."""
