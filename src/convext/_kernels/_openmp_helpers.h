/* OpenMP calls with single-threaded fallbacks, so the package builds and imports where the
 * compiler has no OpenMP (the kernels then run on one thread). */
#ifndef CVX_OPENMP_HELPERS_H
#define CVX_OPENMP_HELPERS_H
#ifdef _OPENMP
#include <omp.h>
#define cvx_openmp_enabled() 1
#define cvx_omp_get_thread_num() omp_get_thread_num()
#define cvx_omp_get_max_threads() omp_get_max_threads()
#else
#define cvx_openmp_enabled() 0
#define cvx_omp_get_thread_num() 0
#define cvx_omp_get_max_threads() 1
#endif
#endif
