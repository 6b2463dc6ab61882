/* TEMPORARY naive stand-in for _gemm.h (same interface) used while the fast one is written. */
#include <stddef.h>
#include <string.h>
typedef ptrdiff_t cvx_index;
#define CVX_GEMM_WORK_ELEMS 16
#define CVX_NAIVE_GEMM(NAME, T) \
static void NAME(cvx_index M, cvx_index N, cvx_index K, const T *A, cvx_index rsa, cvx_index csa, \
                 const T *B, cvx_index rsb, cvx_index csb, T *C, cvx_index ldc, int acc, T *work) { \
    (void)work; \
    for (cvx_index i = 0; i < M; i++) for (cvx_index j = 0; j < N; j++) { \
        T s = 0; for (cvx_index k = 0; k < K; k++) s += A[i*rsa + k*csa] * B[k*rsb + j*csb]; \
        if (acc) C[i*ldc + j] += s; else C[i*ldc + j] = s; } }
CVX_NAIVE_GEMM(cvx_sgemm, float)
CVX_NAIVE_GEMM(cvx_dgemm, double)
