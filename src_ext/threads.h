/* The most threads a parallel region of this extension module uses (fastnn, src_ext/_threads.pxd).
 *
 * One copy per module (static): fastnn._threads sets it in every loaded module through the module's
 * set_max_threads(), e.g. to 1 in a child made by fork, where GNU OpenMP's thread pool (inherited
 * from the parent, its threads gone) would hang a multi-thread region. 0 means OpenMP's default.
 */
#ifndef FASTNN_THREADS_H
#define FASTNN_THREADS_H

#ifdef _OPENMP
#include <omp.h>
#endif

static int fastnn_max_threads = 0;

static inline void fastnn_set_max_threads(int n) { fastnn_max_threads = n > 0 ? n : 0; }

/* Threads for the next parallel region: the limit, else OpenMP's default; 1 without OpenMP. */
static inline int fastnn_threads(void) {
#ifdef _OPENMP
    return fastnn_max_threads > 0 ? fastnn_max_threads : omp_get_max_threads();
#else
    return 1;
#endif
}

#endif
