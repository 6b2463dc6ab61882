/* Kernel harness: every kernel table compiled into this program against naive loops.
 *
 * Built and run by .github/scripts/aarch64_check.sh: cross-compiled with aarch64-linux-gnu-gcc
 * and run under qemu-aarch64 (NEON and generic tables), and natively on x86-64 (generic, AVX2,
 * AVX-512 tables, each only if this CPU has it).  Plain C, no Python: it checks the C layer alone.
 *
 * For each table (the adapter at the end of this file lists them):
 *   GEMM   float and double, M, N, K over the blocking edges (MR, NR, KC, MC, NC and one past),
 *          row-major, transposed and strided A and B, C with ldc > N, overwrite and accumulate;
 *          with A packed once (pack_a, gemm_pa): the packed layout, and C bit for bit as gemm's.
 *          with B packed once (pack_b in two row ranges, gemm_pb; A strided or packed): C bit for
 *          bit as gemm's, nothing written past the packed size.
 *          A B^T with both read along their rows (gemm_nt): rows, columns and K past every
 *          tile and chunk, padded rows, a NaN kept in its row.
 *   direct conv forward and weight gradient: stride, padding, dilation, non-square kernels,
 *          bias and no bias, every filter-block width.
 *   axpy and dot, lengths 0..70 and a long one.
 *   depthwise (depthwise.inc): taps and dots (and the lane fold) over 0..25 taps, rows and
 *          lengths 0..70 and long ones; the polyphase copy and its inverse at strides 1-3 with
 *          every phase and subsets of them, place, copy, finite.
 *   pooling rows (pool.inc): max (value and index) and average rows over the interior columns,
 *          whole 2x2 / 3x3 max windows, kernels 1-4, strides 1-3, padding, dilation, rows of
 *          several runs; ties, NaN and +-inf in the data: bit for bit.
 * Three oracles, all written here independently of the kernels:
 *   exact    small-integer data: every product and partial sum is an integer below 2**24, so every
 *            summation order gives the same, exact result; the kernel must equal the naive loop
 *            bit for bit.  Any wrong index, stride, edge or missing term shows up here.
 *   bound    random data in [-1, 1): |kernel - naive (double)| <= (K + 2) * eps * sum |terms|, the
 *            classic rounding-error bound of a K-term sum (no looser than the arithmetic allows).
 *   order    (tables whose FMA_ORDER flag is set) the documented arithmetic, replayed with the C
 *            library's fma(): GEMM element = fma chain over k ascending from 0 per K chunk, each
 *            chunk added to C; direct forward = fma chain from the bias; dot = 16 partial sums
 *            folded 8, 4, 2, 1; depthwise dots = an fma chain per lane.  Bitwise equal, so every
 *            ISA with FMA computes the same bits, at every optimisation level.
 * Also: -0.0 must survive where IEEE keeps it (a -0.0 bias with -0.0 products), and a NaN or Inf
 * stays in its own row of C / filter of y (edge tiles and padding must not carry it elsewhere).
 * Exit status 0 when everything matches, 1 otherwise (the first mismatches are printed).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_check_tables.h" /* struct check_table, check_tables(): the adapter */

static long n_checks, n_fail;

static void fail(const char *table, const char *what, const char *fmt, ...);
#include <stdarg.h>
static void fail(const char *table, const char *what, const char *fmt, ...)
{
    va_list ap;
    n_fail++;
    if (n_fail > 25) return;
    printf("FAIL [%s] %s: ", table, what);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

/* ---- data ---- */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double uniform(void) { return (double)(rng() >> 11) / 9007199254740992.0 * 2.0 - 1.0; }
static double small_int(int r) { return (double)((int)(rng() % (uint64_t)(2 * r + 1)) - r); }

/* fill n elements at stride 1; mode 0: integers in [-r, r], mode 1: uniform [-1, 1) */
#define DEFINE_FILL(T)                                                                             \
    static void fill_##T(T *p, size_t n, int mode, int r)                                          \
    {                                                                                              \
        size_t i;                                                                                  \
        for (i = 0; i < n; i++) p[i] = (T)(mode ? uniform() : small_int(r));                       \
    }
DEFINE_FILL(float)
DEFINE_FILL(double)

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        printf("out of memory\n");
        exit(2);
    }
    return p;
}

static int same_bits_f(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }
static int same_bits_d(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* ================================= GEMM ================================= */
/* The documented arithmetic of one GEMM element: K in ceil(K/kc) near-equal chunks, each an fma
 * chain from zero over its k ascending, added to c in order (the first chunk replacing c when
 * overwrite); a[k*sa] and b[k*sb] are the element's row of A and column of B. */
#define DEFINE_REPLAY(T, S, FMA)                                                                   \
    static T replay_##S(const T *a, cvx_index sa, const T *b, cvx_index sb, cvx_index K,          \
                        cvx_index kc, T c, int overwrite)                                          \
    {                                                                                              \
        cvx_index nch = (K + kc - 1) / kc, kcmax = nch ? (K + nch - 1) / nch : 0, pc, k;           \
        for (pc = 0; pc < K; pc += kcmax) {                                                        \
            T acc = 0;                                                                             \
            cvx_index kend = pc + kcmax < K ? pc + kcmax : K;                                      \
            for (k = pc; k < kend; k++) acc = FMA(a[k * sa], b[k * sb], acc);                      \
            c = (pc == 0 && overwrite) ? acc : c + acc;                                            \
        }                                                                                          \
        return c;                                                                                  \
    }
DEFINE_REPLAY(float, s, fmaf)
DEFINE_REPLAY(double, d, fma)

/* C (=, +=) A (M x K, strides rsa, csa) @ B (K x N, strides rsb, csb) */
#define DEFINE_GEMM_CHECK(T, S, EPS, SAME)                                                    \
    static void check_gemm_##S(const struct check_table *t, cvx_index M, cvx_index N,             \
                               cvx_index K, int layout_a, int layout_b, int ldc_pad, int accumulate, \
                               int mode)                                                           \
    {                                                                                              \
        cvx_index rsa, csa, rsb, csb, ldc = N + ldc_pad, i, j, k, na, nb;                          \
        T *A, *B, *C, *C0, *work;                                                                  \
        const char *what = #S "gemm";                                                              \
        /* layout 0: row-major, 1: transposed (column-major), 2: strided rows and columns */      \
        rsa = layout_a == 0 ? K : layout_a == 1 ? 1 : 2 * K + 3;                                   \
        csa = layout_a == 0 ? 1 : layout_a == 1 ? M : 2;                                           \
        rsb = layout_b == 0 ? N : layout_b == 1 ? 1 : 2 * N + 5;                                   \
        csb = layout_b == 0 ? 1 : layout_b == 1 ? K : 2;                                           \
        na = (M ? (M - 1) * rsa : 0) + (K ? (K - 1) * csa : 0) + 1;                                \
        nb = (K ? (K - 1) * rsb : 0) + (N ? (N - 1) * csb : 0) + 1;                                \
        A = (T *)xmalloc(sizeof(T) * (size_t)na);                                                  \
        B = (T *)xmalloc(sizeof(T) * (size_t)nb);                                                  \
        C = (T *)xmalloc(sizeof(T) * (size_t)(M * ldc + 1));                                       \
        C0 = (T *)xmalloc(sizeof(T) * (size_t)(M * ldc + 1));                                      \
        work = (T *)xmalloc(sizeof(T) * (size_t)t->gemm_work_elems);                               \
        fill_##T(A, (size_t)na, mode, 8);                                                          \
        fill_##T(B, (size_t)nb, mode, 8);                                                          \
        fill_##T(C0, (size_t)(M * ldc + 1), mode, 64);                                             \
        memcpy(C, C0, sizeof(T) * (size_t)(M * ldc + 1));                                          \
        t->S##gemm(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, work);                   \
        n_checks++;                                                                                \
        for (i = 0; i < M; i++) {                                                                  \
            for (j = ldc - ldc_pad; j < ldc; j++) /* the padding between rows is untouched */     \
                if (!SAME(C[i * ldc + j], C0[i * ldc + j]))                                        \
                    fail(t->name, what, "M=%ld N=%ld K=%ld wrote padding (%ld,%ld)", (long)M,      \
                         (long)N, (long)K, (long)i, (long)j);                                      \
            for (j = 0; j < N; j++) {                                                              \
                double s = accumulate ? (double)C0[i * ldc + j] : 0.0, mag = fabs(s);              \
                T got = C[i * ldc + j];                                                            \
                for (k = 0; k < K; k++) {                                                          \
                    double p = (double)A[i * rsa + k * csa] * (double)B[k * rsb + j * csb];        \
                    s += p;                                                                        \
                    mag += fabs(p);                                                                \
                }                                                                                  \
                if (mode == 0 ? !SAME(got, (T)s)                                                   \
                              : fabs((double)got - s) > (double)(K + 2) * EPS * mag) {             \
                    fail(t->name, what,                                                            \
                         "M=%ld N=%ld K=%ld layout %d/%d acc=%d mode=%d C[%ld,%ld]=%.9g want %.9g",\
                         (long)M, (long)N, (long)K, layout_a, layout_b, accumulate, mode, (long)i, \
                         (long)j, (double)got, s);                                                 \
                    goto done;                                                                     \
                }                                                                                  \
                if (t->fma_order && mode == 1) { /* replay: K chunks, fma chain each */            \
                    T c = replay_##S(A + i * rsa, csa, B + j * csb, rsb, K, t->gemm_kc,            \
                                     accumulate ? C0[i * ldc + j] : (T)0, !accumulate);            \
                    if (!SAME(got, c)) {                                                           \
                        fail(t->name, what,                                                        \
                             "order: M=%ld N=%ld K=%ld acc=%d C[%ld,%ld]=%a, fma chain gives %a",  \
                             (long)M, (long)N, (long)K, accumulate, (long)i, (long)j, (double)got, \
                             (double)c);                                                           \
                        goto done;                                                                 \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    done:                                                                                          \
        free(A);                                                                                   \
        free(B);                                                                                   \
        free(C);                                                                                   \
        free(C0);                                                                                  \
        free(work);                                                                                \
    }
DEFINE_GEMM_CHECK(float, s, 5.9604644775390625e-08, same_bits_f)
DEFINE_GEMM_CHECK(double, d, 1.1102230246251565e-16, same_bits_d)

/* A NaN at A[i0, k0] makes row i0 of C NaN and leaves every other row finite (the zero padding
 * of edge tiles and the temporary tile must not carry it elsewhere) */
#define DEFINE_GEMM_NAN_CHECK(T, S)                                                                \
    static void check_gemm_nan_##S(const struct check_table *t, cvx_index M, cvx_index N,         \
                                   cvx_index K, cvx_index i0, cvx_index k0)                        \
    {                                                                                              \
        T *A = (T *)xmalloc(sizeof(T) * (size_t)(M * K)), *B = (T *)xmalloc(sizeof(T) * (size_t)(K * N)); \
        T *C = (T *)xmalloc(sizeof(T) * (size_t)(M * N));                                          \
        T *work = (T *)xmalloc(sizeof(T) * (size_t)t->gemm_work_elems);                            \
        cvx_index i, j;                                                                            \
        fill_##T(A, (size_t)(M * K), 1, 0);                                                        \
        fill_##T(B, (size_t)(K * N), 1, 0);                                                        \
        A[i0 * K + k0] = (T)NAN;                                                                   \
        t->S##gemm(M, N, K, A, K, 1, B, N, 1, C, N, 0, work);                                      \
        n_checks++;                                                                                \
        for (i = 0; i < M; i++)                                                                    \
            for (j = 0; j < N; j++)                                                                \
                if ((i == i0) != (C[i * N + j] != C[i * N + j])) {                                 \
                    fail(t->name, #S "gemm NaN", "M=%ld N=%ld K=%ld NaN at A[%ld,%ld]: C[%ld,%ld]=%g", \
                         (long)M, (long)N, (long)K, (long)i0, (long)k0, (long)i, (long)j,          \
                         (double)C[i * N + j]);                                                    \
                    i = M;                                                                         \
                    break;                                                                         \
                }                                                                                  \
        free(A), free(B), free(C), free(work);                                                     \
    }
DEFINE_GEMM_NAN_CHECK(float, s)
DEFINE_GEMM_NAN_CHECK(double, d)

/* A packed once (pack_a), then rows r0 .. r0+M-1 of it (r0 = `strips` tile heights) times B
 * (gemm_pa): C bit for bit what gemm gives on those rows of the unpacked A, whatever A's
 * layout; the packed copy holds exactly the elements of the documented layout (strip s of MR
 * rows x K, k-major, the missing rows of the last strip zero) and nothing is written past it */
#define DEFINE_GEMM_PACKED_CHECK(T, S, SAME)                                                       \
    static void check_gemm_packed_##S(const struct check_table *t, cvx_index Mtot, cvx_index N,  \
                                      cvx_index K, int layout_a, cvx_index strips, int accumulate, \
                                      int mode)                                                    \
    {                                                                                              \
        cvx_index mr = t->S##gemm_mr, r0 = strips * mr, M = Mtot - r0, rsa, csa, na, np, i, j, k;  \
        cvx_index s;                                                                               \
        T *A, *P, *B, *C1, *C2, *work;                                                             \
        const char *what = #S "gemm packed A";                                                     \
        if (M <= 0) return;                                                                        \
        rsa = layout_a == 0 ? K : layout_a == 1 ? 1 : 2 * K + 3;                                   \
        csa = layout_a == 0 ? 1 : layout_a == 1 ? Mtot : 2;                                        \
        na = (Mtot - 1) * rsa + (K ? (K - 1) * csa : 0) + 1;                                       \
        np = t->gemm_packed_a_elems(Mtot, K, mr);                                                  \
        A = (T *)xmalloc(sizeof(T) * (size_t)na);                                                  \
        P = (T *)xmalloc(sizeof(T) * (size_t)(np + 64));                                           \
        B = (T *)xmalloc(sizeof(T) * (size_t)(K * N + 1));                                         \
        C1 = (T *)xmalloc(sizeof(T) * (size_t)(M * N));                                            \
        C2 = (T *)xmalloc(sizeof(T) * (size_t)(M * N));                                            \
        work = (T *)xmalloc(sizeof(T) * (size_t)t->gemm_work_elems);                               \
        fill_##T(A, (size_t)na, mode, 8);                                                          \
        fill_##T(B, (size_t)(K * N + 1), mode, 8);                                                 \
        fill_##T(C1, (size_t)(M * N), mode, 64);                                                   \
        memcpy(C2, C1, sizeof(T) * (size_t)(M * N));                                               \
        for (i = 0; i < np + 64; i++) P[i] = (T)NAN;                                               \
        t->S##gemm_pack_a(Mtot, K, A, rsa, csa, P);                                                \
        n_checks++;                                                                                \
        for (i = 0; i < np + 64; i++) {                                                            \
            T want;                                                                                \
            s = K ? i / (mr * K) : 0; /* K = 0: nothing packed (np = 0) */                         \
            k = K ? (i % (mr * K)) / mr : 0;                                                       \
            j = s * mr + i % mr; /* row of A */                                                    \
            want = i >= np ? (T)NAN : j < Mtot ? A[j * rsa + k * csa] : (T)0;                      \
            if (!SAME(P[i], want)) {                                                               \
                fail(t->name, what, "Mtot=%ld K=%ld layout %d: packed[%ld]=%g want %g",          \
                     (long)Mtot, (long)K, layout_a, (long)i, (double)P[i], (double)want);         \
                goto done;                                                                         \
            }                                                                                      \
        }                                                                                          \
        t->S##gemm(M, N, K, A + r0 * rsa, rsa, csa, B, N, 1, C1, N, accumulate, work);             \
        t->S##gemm_pa(M, N, K, P + r0 * K, B, N, 1, C2, N, accumulate, work);                     \
        n_checks++;                                                                                \
        for (i = 0; i < M * N; i++)                                                                \
            if (!SAME(C1[i], C2[i])) {                                                             \
                fail(t->name, what, "M=%ld (rows from %ld) N=%ld K=%ld acc=%d C[%ld,%ld]=%a, "     \
                     "unpacked %a", (long)M, (long)r0, (long)N, (long)K, accumulate,             \
                     (long)(i / N), (long)(i % N), (double)C2[i], (double)C1[i]);                 \
                goto done;                                                                         \
            }                                                                                      \
    done:                                                                                          \
        free(A), free(P), free(B), free(C1), free(C2), free(work);                                 \
    }
DEFINE_GEMM_PACKED_CHECK(float, s, same_bits_f)
DEFINE_GEMM_PACKED_CHECK(double, d, same_bits_d)

/* B packed once (pack_b, rows 0 .. split-1 and split .. K-1 in two calls, as threads do), then
 * rows r0 .. r0+M-1 of A (strided, or packed by pack_a when packed_a) times it (gemm_pb): C bit
 * for bit what gemm gives, whatever B's layout (0: row-major, 1: transposed, 2: strided), and
 * nothing written past gemm_packed_b_elems */
#define DEFINE_GEMM_PACKED_B_CHECK(T, S, SAME)                                                     \
    static void check_gemm_packed_b_##S(const struct check_table *t, cvx_index Mtot, cvx_index N,\
                                        cvx_index K, int layout_b, cvx_index split, int packed_a, \
                                        int accumulate, int mode)                                 \
    {                                                                                              \
        cvx_index mr = t->S##gemm_mr, r0 = Mtot > mr ? mr : 0, M = Mtot - r0, rsb, csb, nb, np, i; \
        T *A, *PA, *B, *PB, *C1, *C2, *work;                                                       \
        const char *what = #S "gemm packed B";                                                     \
        if (M <= 0 || N <= 0) return;                                                              \
        if (split > K) split = K;                                                                  \
        rsb = layout_b == 0 ? N : layout_b == 1 ? 1 : 2 * N + 3;                                   \
        csb = layout_b == 0 ? 1 : layout_b == 1 ? K : 2;                                           \
        nb = (K ? (K - 1) * rsb : 0) + (N - 1) * csb + 1;                                          \
        np = t->gemm_packed_b_elems(K, N, t->S##gemm_nr);                                          \
        A = (T *)xmalloc(sizeof(T) * (size_t)(Mtot * K + 1));                                      \
        PA = (T *)xmalloc(sizeof(T) * (size_t)(t->gemm_packed_a_elems(Mtot, K, mr) + 1));          \
        B = (T *)xmalloc(sizeof(T) * (size_t)nb);                                                  \
        PB = (T *)xmalloc(sizeof(T) * (size_t)(np + 64));                                          \
        C1 = (T *)xmalloc(sizeof(T) * (size_t)(M * N));                                            \
        C2 = (T *)xmalloc(sizeof(T) * (size_t)(M * N));                                            \
        work = (T *)xmalloc(sizeof(T) * (size_t)t->gemm_work_elems);                               \
        fill_##T(A, (size_t)(Mtot * K + 1), mode, 8);                                              \
        fill_##T(B, (size_t)nb, mode, 8);                                                          \
        fill_##T(C1, (size_t)(M * N), mode, 64);                                                   \
        memcpy(C2, C1, sizeof(T) * (size_t)(M * N));                                               \
        for (i = 0; i < np + 64; i++) PB[i] = (T)NAN;                                              \
        t->S##gemm_pack_b(K, N, 0, split, B, rsb, csb, PB);                                        \
        t->S##gemm_pack_b(K, N, split, K, B + split * rsb, rsb, csb, PB);                          \
        t->S##gemm_pack_a(Mtot, K, A, K, 1, PA);                                                   \
        n_checks++;                                                                                \
        for (i = np; i < np + 64; i++)                                                             \
            if (!isnan(PB[i])) {                                                                   \
                fail(t->name, what, "K=%ld N=%ld: packed[%ld] written past the packed size",     \
                     (long)K, (long)N, (long)i);                                                  \
                goto done;                                                                         \
            }                                                                                      \
        t->S##gemm(M, N, K, A + r0 * K, K, 1, B, rsb, csb, C1, N, accumulate, work);               \
        t->S##gemm_pb(M, N, K, A + r0 * K, K, 1, packed_a ? PA + r0 * K : NULL, PB, C2, N,         \
                      accumulate, work);                                                           \
        n_checks++;                                                                                \
        for (i = 0; i < M * N; i++)                                                                \
            if (!SAME(C1[i], C2[i])) {                                                             \
                fail(t->name, what, "M=%ld (rows from %ld) N=%ld K=%ld layout %d split %ld "      \
                     "packed A %d acc=%d C[%ld,%ld]=%a, gemm %a", (long)M, (long)r0, (long)N,    \
                     (long)K, layout_b, (long)split, packed_a, accumulate, (long)(i / N),         \
                     (long)(i % N), (double)C2[i], (double)C1[i]);                                \
                goto done;                                                                         \
            }                                                                                      \
    done:                                                                                          \
        free(A), free(PA), free(B), free(PB), free(C1), free(C2), free(work);                      \
    }
DEFINE_GEMM_PACKED_B_CHECK(float, s, same_bits_f)
DEFINE_GEMM_PACKED_B_CHECK(double, d, same_bits_d)

/* C (M x N, ldc) += A B^T with row i of A at A + i*lda and row j of B at B + j*ldb, both K
 * long (gemm_nt, a weight gradient's dW^T): exact, bound and the fma-order replay (each K chunk
 * of at most nt_kc, near-equal, an fma chain from zero added to C); the padding of A's and
 * B's rows NaN (never read), of C's rows untouched; a NaN in one row of A stays in that row */
#define DEFINE_GEMM_NT_CHECK(T, S, EPS, SAME)                                                 \
    static void check_gemm_nt_##S(const struct check_table *t, cvx_index M, cvx_index N,          \
                                  cvx_index K, cvx_index pad, int mode, cvx_index nan_row)         \
    {                                                                                              \
        cvx_index lda = K + pad, ldb = K + 2 * pad, ldc = N + pad, i, j, k;                        \
        T *A = (T *)xmalloc(sizeof(T) * (size_t)(M * lda));                                        \
        T *B = (T *)xmalloc(sizeof(T) * (size_t)(N * ldb));                                        \
        T *C = (T *)xmalloc(sizeof(T) * (size_t)(M * ldc + 1));                                    \
        T *C0 = (T *)xmalloc(sizeof(T) * (size_t)(M * ldc + 1));                                   \
        T *work = (T *)xmalloc(sizeof(T) * (size_t)t->gemm_work_elems);                            \
        const char *what = #S "gemm_nt";                                                           \
        fill_##T(A, (size_t)(M * lda), mode, 8);                                                   \
        fill_##T(B, (size_t)(N * ldb), mode, 8);                                                   \
        for (i = 0; i < M; i++)                                                                    \
            for (k = K; k < lda; k++) A[i * lda + k] = (T)NAN;                                     \
        for (j = 0; j < N; j++)                                                                    \
            for (k = K; k < ldb; k++) B[j * ldb + k] = (T)NAN;                                     \
        fill_##T(C0, (size_t)(M * ldc + 1), mode, 64);                                             \
        if (nan_row >= 0 && K > 0) A[nan_row * lda + K / 2] = (T)NAN;                              \
        memcpy(C, C0, sizeof(T) * (size_t)(M * ldc + 1));                                          \
        t->S##gemm_nt(M, N, K, A, lda, B, ldb, C, ldc, work);                                      \
        n_checks++;                                                                                \
        for (i = 0; i < M; i++) {                                                                  \
            for (j = N; j < ldc; j++)                                                              \
                if (!SAME(C[i * ldc + j], C0[i * ldc + j])) {                                      \
                    fail(t->name, what, "M=%ld N=%ld K=%ld wrote padding (%ld,%ld)", (long)M,      \
                         (long)N, (long)K, (long)i, (long)j);                                      \
                    goto done;                                                                     \
                }                                                                                  \
            for (j = 0; j < N; j++) {                                                              \
                double s = (double)C0[i * ldc + j], mag = fabs(s);                                 \
                T got = C[i * ldc + j];                                                            \
                if (nan_row >= 0 && K > 0) {                                                       \
                    if ((i == nan_row) != (got != got)) {                                          \
                        fail(t->name, what, "M=%ld N=%ld K=%ld NaN in row %ld of A: C[%ld,%ld]=%g", \
                             (long)M, (long)N, (long)K, (long)nan_row, (long)i, (long)j,           \
                             (double)got);                                                         \
                        goto done;                                                                 \
                    }                                                                              \
                    continue;                                                                      \
                }                                                                                  \
                for (k = 0; k < K; k++) {                                                          \
                    double p = (double)A[i * lda + k] * (double)B[j * ldb + k];                    \
                    s += p;                                                                        \
                    mag += fabs(p);                                                                \
                }                                                                                  \
                if (mode == 0 ? !SAME(got, (T)s)                                                   \
                              : fabs((double)got - s) > (double)(K + 2) * EPS * mag) {             \
                    fail(t->name, what, "M=%ld N=%ld K=%ld pad=%ld mode=%d C[%ld,%ld]=%.9g want %.9g", \
                         (long)M, (long)N, (long)K, (long)pad, mode, (long)i, (long)j,             \
                         (double)got, s);                                                          \
                    goto done;                                                                     \
                }                                                                                  \
                if (t->fma_order && mode == 1) { /* replay: K chunks, fma chain each */            \
                    T c = replay_##S(A + i * lda, 1, B + j * ldb, 1, K, t->S##gemm_nt_kc,          \
                                     C0[i * ldc + j], 0);                                          \
                    if (!SAME(got, c)) {                                                           \
                        fail(t->name, what, "order: M=%ld N=%ld K=%ld C[%ld,%ld]=%a, fma chain gives %a", \
                             (long)M, (long)N, (long)K, (long)i, (long)j, (double)got, (double)c); \
                        goto done;                                                                 \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    done:                                                                                          \
        free(A), free(B), free(C), free(C0), free(work);                                           \
    }
DEFINE_GEMM_NT_CHECK(float, s, 5.9604644775390625e-08, same_bits_f)
DEFINE_GEMM_NT_CHECK(double, d, 1.1102230246251565e-16, same_bits_d)

static void check_gemm_nt(const struct check_table *t)
{
    /* rows past MR and MC (144), columns past a vector, a strip (up to 4 vectors) and NC (384),
     * K past the chunk (two and three chunks) */
    static const cvx_index ms[] = {1, 3, 8, 9, 17, 145, 290};
    static const cvx_index ns[] = {1, 5, 8, 16, 17, 33, 48, 64, 65, 129, 390};
    static const cvx_index ks[] = {0, 1, 7, 16, 100, 171, 513, 1100};
    size_t a, b, c, q = 0;
    for (a = 0; a < sizeof ms / sizeof *ms; a++)
        for (b = 0; b < sizeof ns / sizeof *ns; b++)
            for (c = 0; c < sizeof ks / sizeof *ks; c++, q++) {
                cvx_index M = ms[a], N = ns[b], K = ks[c];
                if (M * N * K > 3000000) continue;
                check_gemm_nt_s(t, M, N, K, (cvx_index)(q % 3), (int)(q % 2), -1);
                check_gemm_nt_d(t, M, N, K, (cvx_index)((q + 1) % 3), (int)((q + 1) % 2), -1);
            }
    /* a NaN in a full row strip, an edge row, a row past MC */
    check_gemm_nt_s(t, 19, 40, 300, 1, 1, 3);
    check_gemm_nt_s(t, 13, 17, 9, 0, 1, 12);
    check_gemm_nt_s(t, 150, 65, 5, 2, 1, 149);
    check_gemm_nt_d(t, 19, 40, 300, 1, 1, 3);
    check_gemm_nt_d(t, 13, 17, 9, 0, 1, 12);
    check_gemm_nt_d(t, 150, 65, 5, 2, 1, 149);
}

static void check_gemm(const struct check_table *t)
{
    /* the blocking edges: tiles (MR up to 8, NR up to 48), MC 144, NC 384, KC 384; a last
     * strip of a few columns after full ones (cvx_krows, cvx_kern_x1: 19 and 51 on AVX2's
     * 16-column strips, 52, 100 and 149 on AVX-512's 48); a lone strip of 9 to 12 columns
     * (cvx_krows2 on AVX-512 float) */
    static const cvx_index ms[] = {1, 2, 3, 5, 7, 8, 9, 12, 13, 17, 24, 25, 143, 145};
    static const cvx_index ns[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17, 19, 24, 25,
                                   31, 36, 47, 48, 49, 51, 52, 97, 100, 149};
    static const cvx_index ks[] = {0, 1, 2, 3, 4, 5, 8, 9, 17, 64, 385};
    size_t a, b, c;
    int layout, mode;
    for (a = 0; a < sizeof ms / sizeof *ms; a++)
        for (b = 0; b < sizeof ns / sizeof *ns; b++)
            for (c = 0; c < sizeof ks / sizeof *ks; c++) {
                cvx_index M = ms[a], N = ns[b], K = ks[c];
                if (M * N * K > 400000) continue; /* keep qemu time short: big cases below */
                layout = (int)((a + b + c) % 9);
                mode = (int)((a + 2 * b + c) % 2);
                check_gemm_s(t, M, N, K, layout / 3, layout % 3, (int)(c % 3), (int)(b % 2), mode);
                check_gemm_d(t, M, N, K, layout % 3, layout / 3, (int)(a % 2), (int)(c % 2), 1 - mode);
            }
    /* past KC (two and three K chunks), MC and NC, every layout, both modes */
    for (layout = 0; layout < 9; layout++)
        for (mode = 0; mode < 2; mode++) {
            check_gemm_s(t, 19, 53, 769, layout / 3, layout % 3, 1, mode, mode);
            check_gemm_d(t, 21, 29, 770, layout / 3, layout % 3, 0, 1 - mode, mode);
        }
    check_gemm_s(t, 150, 390, 40, 0, 0, 3, 0, 1);
    check_gemm_s(t, 150, 390, 40, 1, 2, 0, 1, 0);
    check_gemm_d(t, 147, 389, 30, 2, 1, 2, 1, 1);
    check_gemm_d(t, 147, 389, 30, 0, 0, 0, 0, 0);
    /* NaN in a full tile, an edge row, the last row past MC, and the second K chunk */
    check_gemm_nan_s(t, 19, 29, 40, 3, 7);
    check_gemm_nan_s(t, 13, 50, 9, 12, 0);
    check_gemm_nan_s(t, 150, 17, 5, 149, 4);
    check_gemm_nan_s(t, 9, 13, 500, 8, 450);
    check_gemm_nan_d(t, 19, 29, 40, 3, 7);
    check_gemm_nan_d(t, 13, 50, 9, 12, 0);
    check_gemm_nan_d(t, 150, 17, 5, 149, 4);
    check_gemm_nan_d(t, 9, 13, 500, 8, 450);
    /* A packed once: rows from 0 and from later strips, past MR, MC (144), KC (two and three
     * chunks) and NC (384), every A layout, overwrite and accumulate, both data modes */
    {
        static const cvx_index pm[] = {1, 5, 8, 13, 150, 301};
        /* N: cvx_krows (1, 7), cvx_krows2 (9 to 12), the narrow kernels (17), the full one
         * into its temporary tile (36), each with the prefetch of the first strip's pass */
        static const cvx_index pn[] = {1, 7, 9, 10, 11, 12, 17, 36, 48, 49, 97, 390};
        static const cvx_index pk[] = {0, 1, 9, 385, 769};
        size_t q = 0;
        for (a = 0; a < sizeof pm / sizeof *pm; a++)
            for (b = 0; b < sizeof pn / sizeof *pn; b++)
                for (c = 0; c < sizeof pk / sizeof *pk; c++, q++) {
                    cvx_index M = pm[a], N = pn[b], K = pk[c], strips;
                    if (M * N * K > 3000000) continue;
                    for (strips = 0; strips < 3; strips++) {
                        check_gemm_packed_s(t, M, N, K, (int)(q % 3), strips, (int)(q % 2),
                                            (int)((q + strips) % 2));
                        check_gemm_packed_d(t, M, N, K, (int)((q + 1) % 3), strips,
                                            (int)((q + 1) % 2), (int)((q + strips + 1) % 2));
                    }
                }
    }
    /* B packed once (row ranges split anywhere, also mid-chunk): past NR (the last strip 1, a
     * few and many columns wide, its columns fused into the full strips' passes or not), KC (two and three chunks), MC and NC, every B layout, A
     * strided and packed, overwrite and accumulate, both data modes */
    {
        static const cvx_index bm[] = {1, 8, 13, 150};
        static const cvx_index bn[] = {1, 5, 12, 48, 49, 60, 97, 98, 196, 390};
        static const cvx_index bk[] = {0, 1, 9, 385, 769};
        size_t q = 0;
        for (a = 0; a < sizeof bm / sizeof *bm; a++)
            for (b = 0; b < sizeof bn / sizeof *bn; b++)
                for (c = 0; c < sizeof bk / sizeof *bk; c++, q++) {
                    cvx_index M = bm[a], N = bn[b], K = bk[c];
                    if (M * N * K > 3000000) continue;
                    check_gemm_packed_b_s(t, M, N, K, (int)(q % 3), K / 3 + 1, (int)(q % 2),
                                          (int)((q / 2) % 2), (int)(q % 2));
                    check_gemm_packed_b_d(t, M, N, K, (int)((q + 1) % 3), K / 2, (int)((q + 1) % 2),
                                          (int)((q / 3) % 2), (int)((q + 1) % 2));
                }
    }
}

/* =========================== direct convolution =========================== */
static void direct_setup(cvx_direct_geom *g, cvx_index Cg, cvx_index H, cvx_index W, cvx_index Fg,
                         cvx_index kh, cvx_index kw, cvx_index s_h, cvx_index s_w, cvx_index p_h,
                         cvx_index p_w, cvx_index d_h, cvx_index d_w)
{
    g->Cg = Cg, g->H = H, g->W = W, g->Fg = Fg, g->kh = kh, g->kw = kw;
    g->sh = s_h, g->sw = s_w, g->ph = p_h, g->pw = p_w, g->dil_h = d_h, g->dil_w = d_w;
    g->OH = (H + 2 * p_h - d_h * (kh - 1) - 1) / s_h + 1;
    g->OW = (W + 2 * p_w - d_w * (kw - 1) - 1) / s_w + 1;
    g->Hq = g->OH + (d_h * (kh - 1)) / s_h;
    g->K = Cg * kh * kw;
    g->P = g->OH * g->OW;
    g->p_begin = 0, g->p_end = g->P, g->f_begin = 0, g->f_end = Fg;
    g->res = NULL, g->clamp = 0, g->lo = 0, g->hi = 0;
    g->band_bytes = cvx_direct_band_bytes; /* (the forward's scratch sets it again) */
}
/* off[k] as _conv.pyx's _direct_offsets computes it */
static cvx_index *direct_offsets(const cvx_direct_geom *d)
{
    cvx_index *o = (cvx_index *)xmalloc(sizeof(cvx_index) * (size_t)d->K), c, i, j, k = 0;
    for (c = 0; c < d->Cg; c++)
        for (i = 0; i < d->kh; i++)
            for (j = 0; j < d->kw; j++)
                o[k++] = (((c * d->sh + (i * d->dil_h) % d->sh) * d->kw + j) * d->Hq +
                          (i * d->dil_h) / d->sh) * d->OW;
    return o;
}

#define DEFINE_DIRECT_CHECK(T, EPS, FMA, SAME)                                                     \
    /* x at the input pixel of output (oh, ow), tap (c, i, j); 0 in the padding */                 \
    static T direct_x_##T(const cvx_direct_geom *g, const T *x, cvx_index c, cvx_index i,          \
                          cvx_index j, cvx_index oh, cvx_index ow)                                 \
    {                                                                                              \
        cvx_index ih = oh * g->sh - g->ph + i * g->dil_h, iw = ow * g->sw - g->pw + j * g->dil_w;  \
        if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) return 0;                                \
        return x[(c * g->H + ih) * g->W + iw];                                                     \
    }                                                                                              \
    /* y = the forward as _conv.pyx calls it: all pixels and filters at once, the kernel packing \
     * each filter block (split 0); the work items of a batch of one image: three pixel ranges   \
     * cut at P/3 and P/3 + 7 times two filter ranges cut at Fg/2 (whichever blocks start in     \
     * them), with the weights packed first in two filter ranges (split 1, as                    \
     * optimize_for_inference packs them) or by the kernel (split 2) */                          \
    static void direct_fwd_##T(const struct check_table *t, const cvx_direct_geom *g, const T *x,  \
                               const T *w, const T *b, const cvx_index *off, T *y, T *scratch,     \
                               int split)                                                          \
    {                                                                                              \
        cvx_direct_geom d = *g;                                                                    \
        cvx_index cut[4], fcut[3] = {0, split ? g->Fg / 2 : g->Fg, g->Fg}, r, h;                   \
        T *wp = (T *)xmalloc(sizeof(T) * (size_t)(g->Fg * g->K));                                  \
        cut[0] = 0, cut[1] = split ? g->P / 3 : g->P, cut[2] = split ? g->P / 3 + 7 : g->P;        \
        cut[3] = g->P;                                                                             \
        if (cut[2] > g->P) cut[2] = g->P;                                                          \
        if (split == 1) {                                                                          \
            t->direct_pack_##T(g, w, wp, 0, g->Fg / 2);                                            \
            t->direct_pack_##T(g, w, wp, g->Fg / 2, g->Fg);                                        \
        }                                                                                          \
        for (r = 0; r < 3; r++)                                                                    \
            for (h = 0; h < 2; h++) {                                                              \
                if (cut[r + 1] <= cut[r] || fcut[h + 1] <= fcut[h]) continue;                      \
                d.p_begin = cut[r], d.p_end = cut[r + 1];                                          \
                d.f_begin = fcut[h], d.f_end = fcut[h + 1];                                        \
                t->direct_fwd_##T(&d, x, w, split == 1 ? wp : NULL, b, off, y, scratch);           \
            }                                                                                      \
        free(wp);                                                                                  \
    }                                                                                              \
    static void check_direct_##T(const struct check_table *t, const cvx_direct_geom *g, int bias,  \
                                 int mode, int split)                                              \
    {                                                                                              \
        cvx_index K = g->K, P = g->P, f, k, p, c, i, j;                                            \
        cvx_index *off = direct_offsets(g);                                                        \
        T *x = (T *)xmalloc(sizeof(T) * (size_t)(g->Cg * g->H * g->W));                            \
        T *w = (T *)xmalloc(sizeof(T) * (size_t)(g->Fg * K));                                      \
        T *b = (T *)xmalloc(sizeof(T) * (size_t)g->Fg);                                            \
        T *y = (T *)xmalloc(sizeof(T) * (size_t)(g->Fg * P + 1));                                  \
        T *gy = (T *)xmalloc(sizeof(T) * (size_t)(g->Fg * P));                                     \
        T *gw = (T *)xmalloc(sizeof(T) * (size_t)(g->Fg * K));                                     \
        T *scratch = (T *)xmalloc(sizeof(T) * (size_t)t->direct_scratch(g));                       \
        cvx_index nfs = t->direct_fwd_scratch(g), q;                                               \
        T *fscratch = (T *)xmalloc(sizeof(T) * (size_t)(nfs + 16)); /* 16 guards after it */       \
        T *v = (T *)xmalloc(sizeof(T) * (size_t)t->direct_v_elems(g));                             \
        char what[160];                                                                            \
        snprintf(what, sizeof what,                                                                \
                 #T " direct Cg=%ld %ldx%ld F=%ld k=%ldx%ld s=%ld,%ld p=%ld,%ld d=%ld,%ld b=%d m=%d "  \
                 "split=%d",                                                                       \
                 (long)g->Cg, (long)g->H, (long)g->W, (long)g->Fg, (long)g->kh, (long)g->kw,       \
                 (long)g->sh, (long)g->sw, (long)g->ph, (long)g->pw, (long)g->dil_h,              \
                 (long)g->dil_w, bias, mode, split);                                               \
        fill_##T(x, (size_t)(g->Cg * g->H * g->W), mode, 6);                                       \
        fill_##T(w, (size_t)(g->Fg * K), mode, 6);                                                 \
        fill_##T(b, (size_t)g->Fg, mode, 50);                                                      \
        fill_##T(gy, (size_t)(g->Fg * P), mode, 6);                                                \
        y[g->Fg * P] = (T)12345; /* guard */                                                       \
        for (q = 0; q < 16; q++) fscratch[nfs + q] = (T)12345;                                     \
        direct_fwd_##T(t, g, x, w, bias ? b : NULL, off, y, fscratch, split);                      \
        n_checks++;                                                                                \
        if (y[g->Fg * P] != (T)12345) fail(t->name, what, "forward wrote past y");                 \
        for (q = 0; q < 16; q++)                                                                   \
            if (fscratch[nfs + q] != (T)12345)                                                     \
                fail(t->name, what, "forward wrote past its scratch");                             \
        for (f = 0; f < g->Fg; f++)                                                                \
            for (p = 0; p < P; p++) {                                                              \
                cvx_index oh = p / g->OW, ow = p % g->OW;                                          \
                double s = bias ? (double)b[f] : 0.0, mag = fabs(s);                               \
                T chain = bias ? b[f] : (T)0, got = y[f * P + p];                                  \
                for (c = 0, k = 0; c < g->Cg; c++)                                                 \
                    for (i = 0; i < g->kh; i++)                                                    \
                        for (j = 0; j < g->kw; j++, k++) {                                         \
                            T xv = direct_x_##T(g, x, c, i, j, oh, ow);                            \
                            s += (double)w[f * K + k] * (double)xv;                                \
                            mag += fabs((double)w[f * K + k] * (double)xv);                        \
                            chain = FMA(w[f * K + k], xv, chain);                                  \
                        }                                                                          \
                if (mode == 0 ? !SAME(got, (T)s) : fabs((double)got - s) > (K + 2) * EPS * mag) {  \
                    fail(t->name, what, "forward y[%ld,%ld]=%.9g want %.9g", (long)f, (long)p,    \
                         (double)got, s);                                                          \
                    goto gradient;                                                                 \
                }                                                                                  \
                if (t->fma_order && mode == 1 && !SAME(got, chain)) {                              \
                    fail(t->name, what, "order: forward y[%ld,%ld]=%a, fma chain gives %a",        \
                         (long)f, (long)p, (double)got, (double)chain);                            \
                    goto gradient;                                                                 \
                }                                                                                  \
            }                                                                                      \
    gradient:                                                                                      \
        /* two images summed into the lane partial sums, as _conv.pyx does per block */            \
        memset(v, 0, sizeof(T) * (size_t)t->direct_v_elems(g));                                    \
        t->direct_gw_##T(g, x, gy, off, v, scratch);                                               \
        t->direct_gw_##T(g, x, gy, off, v, scratch);                                               \
        t->direct_gw_finish_##T(g, v, gw);                                                         \
        n_checks++;                                                                                \
        for (f = 0; f < g->Fg; f++)                                                                \
            for (c = 0, k = 0; c < g->Cg; c++)                                                     \
                for (i = 0; i < g->kh; i++)                                                        \
                    for (j = 0; j < g->kw; j++, k++) {                                             \
                        double s = 0, mag = 0;                                                     \
                        T got = gw[f * K + k];                                                     \
                        for (p = 0; p < P; p++) {                                                  \
                            double q = (double)gy[f * P + p] *                                     \
                                       (double)direct_x_##T(g, x, c, i, j, p / g->OW, p % g->OW);  \
                            s += 2 * q;                                                            \
                            mag += 2 * fabs(q);                                                    \
                        }                                                                          \
                        if (mode == 0 ? !SAME(got, (T)s)                                           \
                                      : fabs((double)got - s) > (2 * P + 2) * EPS * mag) {         \
                            fail(t->name, what, "grad_w[%ld,%ld]=%.9g want %.9g", (long)f,         \
                                 (long)k, (double)got, s);                                         \
                            goto done;                                                             \
                        }                                                                          \
                    }                                                                              \
    done:                                                                                          \
        free(off), free(x), free(w), free(b), free(y), free(gy), free(gw), free(scratch);          \
        free(fscratch), free(v);                                                                   \
    }                                                                                              \
    /* -0.0 bias plus -0.0 products is -0.0 (IEEE: -0 + -0 = -0), as in PyTorch */                 \
    static void check_direct_negzero_##T(const struct check_table *t)                              \
    {                                                                                              \
        cvx_direct_geom g;                                                                         \
        cvx_index *off, q, n;                                                                      \
        T x[2 * 5 * 7], w[3 * 2 * 3 * 2], b[3], y[3 * 5 * 6], *scratch; /* OH 5, OW 6 */                             \
        direct_setup(&g, 2, 5, 7, 3, 3, 2, 1, 1, 1, 0, 1, 1);                                      \
        off = direct_offsets(&g);                                                                  \
        scratch = (T *)xmalloc(sizeof(T) * (size_t)t->direct_fwd_scratch(&g));                     \
        for (q = 0; q < 2 * 5 * 7; q++) x[q] = (T)1 + (T)q;                                        \
        for (q = 0; q < 3 * 2 * 3 * 2; q++) w[q] = -(T)0;                                          \
        for (q = 0; q < 3; q++) b[q] = -(T)0;                                                      \
        n = g.Fg * g.P;                                                                            \
        direct_fwd_##T(t, &g, x, w, b, off, y, scratch, 0);                                        \
        n_checks++;                                                                                \
        for (q = 0; q < n; q++)                                                                    \
            if (!(y[q] == 0 && signbit(y[q]))) {                                                   \
                fail(t->name, #T " direct -0.0", "y[%ld] = %g, want -0.0", (long)q, (double)y[q]); \
                break;                                                                             \
            }                                                                                      \
        free(off), free(scratch);                                                                  \
    }
DEFINE_DIRECT_CHECK(float, 5.9604644775390625e-08, fmaf, same_bits_f)
DEFINE_DIRECT_CHECK(double, 1.1102230246251565e-16, fma, same_bits_d)
/* an Inf weight of filter f0 makes every output of f0 non-finite (Inf times a padded zero is
 * NaN, as in PyTorch) and leaves the other filters finite */
#define DEFINE_DIRECT_INF_CHECK(T)                                                                 \
    static void check_direct_inf_##T(const struct check_table *t, const cvx_direct_geom *g,        \
                                     cvx_index f0, cvx_index k0)                                   \
    {                                                                                              \
        cvx_index *off = direct_offsets(g), q, P = g->P;                                           \
        T *x = (T *)xmalloc(sizeof(T) * (size_t)(g->Cg * g->H * g->W));                            \
        T *w = (T *)xmalloc(sizeof(T) * (size_t)(g->Fg * g->K));                                   \
        T *y = (T *)xmalloc(sizeof(T) * (size_t)(g->Fg * P));                                      \
        T *scratch = (T *)xmalloc(sizeof(T) * (size_t)t->direct_fwd_scratch(g));                   \
        fill_##T(x, (size_t)(g->Cg * g->H * g->W), 1, 0);                                          \
        fill_##T(w, (size_t)(g->Fg * g->K), 1, 0);                                                 \
        w[f0 * g->K + k0] = (T)INFINITY;                                                           \
        direct_fwd_##T(t, g, x, w, NULL, off, y, scratch, 1);                                      \
        n_checks++;                                                                                \
        for (q = 0; q < g->Fg * P; q++)                                                            \
            if ((q / P == f0) != !isfinite(y[q])) {                                                \
                fail(t->name, #T " direct Inf", "Fg=%ld Inf weight of filter %ld: y[%ld,%ld]=%g",   \
                     (long)g->Fg, (long)f0, (long)(q / P), (long)(q % P), (double)y[q]);           \
                break;                                                                             \
            }                                                                                      \
        free(off), free(x), free(w), free(y), free(scratch);                                       \
    }
DEFINE_DIRECT_INF_CHECK(float)
DEFINE_DIRECT_INF_CHECK(double)

/* the epilogue in the kernel (g->res, g->clamp) on every tile: the same bits as the forward
 * without it followed by v = y + res, then the clamp to [lo, hi], with the work items split
 * (split 1) or not; with res and clamp, res alone, the clamp alone; res holds a NaN and a -inf */
#define DEFINE_DIRECT_EPI_CHECK(T)                                                                 \
    static void check_direct_epi_##T(const struct check_table *t, const cvx_direct_geom *g)        \
    {                                                                                              \
        cvx_index *off = direct_offsets(g), q, n = g->Fg * g->P;                                   \
        T *x = (T *)xmalloc(sizeof(T) * (size_t)(g->Cg * g->H * g->W));                            \
        T *w = (T *)xmalloc(sizeof(T) * (size_t)(g->Fg * g->K));                                   \
        T *b = (T *)xmalloc(sizeof(T) * (size_t)g->Fg);                                            \
        T *r = (T *)xmalloc(sizeof(T) * (size_t)n);                                                \
        T *y0 = (T *)xmalloc(sizeof(T) * (size_t)n);                                               \
        T *y = (T *)xmalloc(sizeof(T) * (size_t)n);                                                \
        T *scratch = (T *)xmalloc(sizeof(T) * (size_t)t->direct_fwd_scratch(g));                   \
        cvx_direct_geom e = *g;                                                                    \
        int mode;                                                                                  \
        fill_##T(x, (size_t)(g->Cg * g->H * g->W), 1, 0);                                          \
        fill_##T(w, (size_t)(g->Fg * g->K), 1, 0);                                                 \
        fill_##T(b, (size_t)g->Fg, 1, 0);                                                          \
        fill_##T(r, (size_t)n, 1, 0);                                                              \
        r[n / 3] = (T)NAN, r[n / 2] = (T)-INFINITY; /* a NaN stays NaN; -inf clamps to lo */       \
        direct_fwd_##T(t, g, x, w, b, off, y0, scratch, 0);                                        \
        e.lo = -0.25, e.hi = 0.5;                                                                  \
        for (mode = 0; mode < 3; mode++) {                                                         \
            e.res = mode == 2 ? NULL : r, e.clamp = mode != 1;                                     \
            direct_fwd_##T(t, &e, x, w, b, off, y, scratch, 1 + mode % 2);                         \
            n_checks++;                                                                            \
            for (q = 0; q < n; q++) {                                                              \
                T v = mode == 2 ? y0[q] : y0[q] + r[q];                                            \
                if (mode != 1) {                                                                   \
                    v = v < (T)e.lo ? (T)e.lo : v;                                                 \
                    v = v > (T)e.hi ? (T)e.hi : v;                                                 \
                }                                                                                  \
                if (!(v == y[q]) && !(v != v && y[q] != y[q])) {                                   \
                    fail(t->name, #T " direct epilogue", "Fg=%ld P=%ld mode %d: y[%ld] = %g, want %g", \
                         (long)g->Fg, (long)g->P, mode, (long)q, (double)y[q], (double)v);        \
                    break;                                                                         \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        free(off), free(x), free(w), free(b), free(r), free(y0), free(y), free(scratch);           \
    }
DEFINE_DIRECT_EPI_CHECK(float)
DEFINE_DIRECT_EPI_CHECK(double)

static void check_direct(const struct check_table *t)
{
    /* Cg, H, W, Fg, kh, kw, sh, sw, ph, pw, dh, dw */
    static const int shapes[][12] = {
        {1, 5, 5, 1, 1, 1, 1, 1, 0, 0, 1, 1},   {3, 9, 11, 8, 3, 3, 1, 1, 1, 1, 1, 1},
        {2, 12, 7, 5, 3, 2, 2, 1, 1, 0, 1, 1},  {1, 17, 19, 16, 5, 5, 2, 2, 2, 2, 1, 1},
        {3, 10, 13, 9, 3, 3, 1, 2, 2, 1, 2, 3}, {4, 8, 9, 3, 2, 4, 3, 2, 0, 1, 1, 1},
        {1, 40, 41, 12, 7, 7, 2, 2, 3, 3, 1, 1}, {2, 6, 6, 17, 1, 3, 1, 1, 0, 1, 1, 2},
        {3, 33, 5, 7, 3, 1, 1, 1, 1, 0, 2, 1},  {1, 4, 70, 2, 2, 2, 1, 3, 1, 1, 1, 1},
        {2, 3, 3, 6, 3, 3, 1, 1, 1, 1, 1, 1},   {1, 2, 2, 4, 2, 2, 4, 4, 1, 1, 1, 1},
        /* several bands of CVX_DIRECT_BAND_BYTES (the forward's pixel bands): a band of a few
         * strips starting mid-row; a band of 8 output rows (more rows of U than the budget:
         * CVX_DIRECT_MIN_BAND_ROWS); a strided 7x7 kernel; a dilated one */
        {64, 20, 20, 9, 3, 3, 1, 1, 1, 1, 1, 1}, {256, 12, 40, 3, 3, 3, 1, 1, 1, 1, 1, 1},
        {16, 50, 50, 10, 7, 7, 2, 2, 3, 3, 1, 1}, {48, 23, 29, 5, 3, 3, 1, 1, 2, 2, 2, 2},
        /* the last pixels (fewer than a vector) in filter lanes: 7x7 = 49 pixels with 43
         * filters (full blocks in a group of 4 and a group of 1, then a narrower block); 5x11 =
         * 55 pixels (a tail of 7 in AVX-512 float) with 8 full blocks of 8; 14x14 down to 7x7 */
        {24, 7, 7, 43, 3, 3, 1, 1, 1, 1, 1, 1},  {16, 5, 11, 64, 3, 3, 1, 1, 1, 1, 1, 1},
        {32, 14, 14, 48, 3, 3, 2, 2, 1, 1, 1, 1},
        /* 1x1 at stride 1 without padding, P >= VL: x read in place as U (9x9 = 81 pixels: a
         * strip, vectors, and a last pixel copied; 13 filters: a narrower block), dilated
         * (no effect), several bands */
        {5, 9, 9, 13, 1, 1, 1, 1, 0, 0, 1, 1},   {7, 11, 10, 8, 1, 1, 1, 1, 0, 0, 2, 3},
        {1024, 8, 40, 3, 1, 1, 1, 1, 0, 0, 1, 1}, {40, 4, 5, 11, 1, 1, 1, 1, 0, 0, 1, 1},
        {96, 7, 7, 43, 1, 1, 1, 1, 0, 0, 1, 1},
        /* strips, a one-vector strip and the lanes tail (29x37 = 1073 pixels); several bands
         * of few taps (300 wide, 160 tall); a valid 5x5 whose last rows' vector copies would
         * read past the input (the unfold's element-wise end) */
        {8, 29, 37, 21, 3, 3, 1, 1, 1, 1, 1, 1}, {4, 160, 300, 19, 3, 3, 1, 1, 1, 1, 1, 1},
        {6, 14, 14, 16, 5, 5, 1, 1, 0, 0, 1, 1},
        /* the unfold's row copies at stride 1: three vectors a row without padding (the last
         * rows element-wise); row stride 2 with a padded column (rows of whole vectors and
         * zeroed columns); 16 filters: the lanes tail of two blocks in AVX-512 float */
        {3, 30, 40, 9, 5, 3, 1, 1, 0, 0, 1, 1}, {2, 20, 21, 16, 3, 3, 2, 1, 0, 1, 1, 1},
    };
    size_t s;
    cvx_direct_geom g;
    for (s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const int *d = shapes[s];
        direct_setup(&g, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11]);
        check_direct_float(t, &g, (int)(s % 2), 0, (int)(s % 2));
        check_direct_float(t, &g, (int)((s + 1) % 2), 1, (int)((s + 1) % 2));
        check_direct_double(t, &g, (int)(s % 2), 1, (int)(s % 2) * 2);
        check_direct_double(t, &g, 1, 0, 1);
    }
    check_direct_negzero_float(t);
    check_direct_negzero_double(t);
    /* Inf in an 8-filter tile, a narrower block and the last filter, with padding (NaN there) */
    direct_setup(&g, 3, 9, 11, 8, 3, 3, 1, 1, 1, 1, 1, 1);
    check_direct_inf_float(t, &g, 5, 13);
    check_direct_inf_double(t, &g, 0, 0);
    direct_setup(&g, 2, 12, 7, 13, 3, 2, 2, 1, 1, 0, 1, 1);
    check_direct_inf_float(t, &g, 12, 11);
    check_direct_inf_double(t, &g, 6, 4);
    /* in a full block of the filter-lanes tail (7x7: the last pixel) */
    direct_setup(&g, 24, 7, 7, 43, 3, 3, 1, 1, 1, 1, 1, 1);
    check_direct_inf_float(t, &g, 37, 100);
    check_direct_inf_double(t, &g, 33, 215);
    /* the epilogue: strips, one-vector tiles and the lanes tail (7x7, 5x11), bands (20x20) */
    check_direct_epi_float(t, &g);
    check_direct_epi_double(t, &g);
    direct_setup(&g, 16, 5, 11, 64, 3, 3, 1, 1, 1, 1, 1, 1);
    check_direct_epi_float(t, &g);
    direct_setup(&g, 3, 9, 11, 13, 3, 3, 1, 1, 1, 1, 1, 1);
    check_direct_epi_float(t, &g);
    check_direct_epi_double(t, &g);
    direct_setup(&g, 64, 20, 20, 9, 3, 3, 1, 1, 1, 1, 1, 1);
    check_direct_epi_double(t, &g);
    direct_setup(&g, 5, 9, 9, 13, 1, 1, 1, 1, 0, 0, 1, 1);
    check_direct_epi_float(t, &g);
    check_direct_epi_double(t, &g);
}

/* ============================ axpy and dot ============================ */
#define DEFINE_VEC_CHECK(T, EPS, FMA, SAME)                                                        \
    static void check_vec_##T(const struct check_table *t, cvx_index n, int mode)                  \
    {                                                                                              \
        T *x = (T *)xmalloc(sizeof(T) * (size_t)(n + 1)), *y = (T *)xmalloc(sizeof(T) * (size_t)(n + 1)); \
        T *y0 = (T *)xmalloc(sizeof(T) * (size_t)(n + 1)), a, got, part[16], want;                 \
        double s = 0, mag = 0;                                                                     \
        cvx_index i, l;                                                                            \
        fill_##T(x, (size_t)(n + 1), mode, 8);                                                     \
        fill_##T(y0, (size_t)(n + 1), mode, 64);                                                   \
        a = mode ? (T)uniform() : (T)small_int(8);                                                 \
        memcpy(y, y0, sizeof(T) * (size_t)(n + 1));                                                \
        t->axpy_##T(n, a, x, y);                                                                   \
        n_checks++;                                                                                \
        if (!SAME(y[n], y0[n])) fail(t->name, #T " axpy", "n=%ld wrote y[n]", (long)n);            \
        for (i = 0; i < n; i++) {                                                                  \
            double e = (double)y0[i] + (double)a * (double)x[i];                                   \
            if (mode == 0 ? !SAME(y[i], (T)e) : fabs((double)y[i] - e) > 3 * EPS * (fabs((double)y0[i]) + fabs((double)a * x[i]))) { \
                fail(t->name, #T " axpy", "n=%ld y[%ld]=%.9g want %.9g", (long)n, (long)i,      \
                     (double)y[i], e);                                                             \
                break;                                                                             \
            }                                                                                      \
            if (t->fma_order && mode == 1 && !SAME(y[i], FMA(a, x[i], y0[i]))) {                   \
                fail(t->name, #T " axpy", "order: n=%ld y[%ld]=%a, fma gives %a", (long)n,         \
                     (long)i, (double)y[i], (double)FMA(a, x[i], y0[i]));                          \
                break;                                                                             \
            }                                                                                      \
        }                                                                                          \
        got = t->dot_##T(n, x, y0);                                                                \
        n_checks++;                                                                                \
        for (i = 0; i < n; i++) {                                                                  \
            s += (double)x[i] * (double)y0[i];                                                     \
            mag += fabs((double)x[i] * (double)y0[i]);                                             \
        }                                                                                          \
        if (mode == 0 ? !SAME(got, (T)s) : fabs((double)got - s) > (n + 2) * EPS * mag)            \
            fail(t->name, #T " dot", "n=%ld got %.9g want %.9g", (long)n, (double)got, s);         \
        /* the documented order: 16 partial sums (element i into i %% 16), folded 8, 4, 2, 1 */   \
        for (l = 0; l < 16; l++) part[l] = 0;                                                      \
        for (i = 0; i < n; i++) part[i % 16] = FMA(x[i], y0[i], part[i % 16]);                     \
        for (l = 8; l > 0; l /= 2)                                                                 \
            for (i = 0; i < l; i++) part[i] += part[i + l];                                        \
        want = part[0];                                                                            \
        if (t->fma_order && mode == 1 && !SAME(got, want))                                         \
            fail(t->name, #T " dot", "order: n=%ld got %a, the 16-partial fma order gives %a",     \
                 (long)n, (double)got, (double)want);                                              \
        free(x), free(y), free(y0);                                                                \
    }
DEFINE_VEC_CHECK(float, 5.9604644775390625e-08, fmaf, same_bits_f)
DEFINE_VEC_CHECK(double, 1.1102230246251565e-16, fma, same_bits_d)

static void check_vec(const struct check_table *t)
{
    cvx_index n;
    for (n = 0; n <= 70; n++) {
        check_vec_float(t, n, (int)(n % 2));
        check_vec_float(t, n, (int)(1 - n % 2));
        check_vec_double(t, n, (int)(n % 2));
        check_vec_double(t, n, (int)(1 - n % 2));
    }
    check_vec_float(t, 1001, 1);
    check_vec_double(t, 1003, 0);
}

/* ======================= depthwise kernels (depthwise.inc) ======================= */
/* taps: out[r*ld_out + p] = (acc ? out : bias) + sum_t w[t] * base[t][r*ld_in + p], t in order;
 * base[t] = plane + t*(t+1)/2 (shifted copies). dots: acc[16t + p%16] += g * base[t], rows in
 * order; lanes: the 16 sums folded 8, 4, 2, 1. Exact on integer data, within the bound otherwise;
 * the columns p >= n of out stay untouched. With the fma-order replay, each dots lane is the fma
 * chain over its terms in order (bitwise). */
#define DEFINE_DW_CHECK(T, EPS, FMA, SAME)                                                         \
    static void check_dw_##T(const struct check_table *t, cvx_index rows, cvx_index n, int ntaps,  \
                             int accumulate, int mode)                                             \
    {                                                                                              \
        cvx_index ld_in = n + 3, ld_out = n + 2, ld_g = n + 1, span = rows * ld_in + 400, r, p;    \
        T *plane = (T *)xmalloc(sizeof(T) * (size_t)span);                                        \
        T *w = (T *)xmalloc(sizeof(T) * (size_t)(ntaps + 1));                                      \
        T *out = (T *)xmalloc(sizeof(T) * (size_t)(rows * ld_out + 1));                            \
        T *out0 = (T *)xmalloc(sizeof(T) * (size_t)(rows * ld_out + 1));                           \
        T *g = (T *)xmalloc(sizeof(T) * (size_t)(rows * ld_g + 1));                                \
        T *acc = (T *)xmalloc(sizeof(T) * (size_t)(16 * ntaps + 16));                              \
        T *acc0 = (T *)xmalloc(sizeof(T) * (size_t)(16 * ntaps + 16));                             \
        const T *base[32];                                                                         \
        T bias;                                                                                    \
        int k, l;                                                                                  \
        fill_##T(plane, (size_t)span, mode, 8);                                                    \
        fill_##T(w, (size_t)(ntaps + 1), mode, 8);                                                 \
        fill_##T(out0, (size_t)(rows * ld_out + 1), mode, 64);                                     \
        fill_##T(g, (size_t)(rows * ld_g + 1), mode, 8);                                           \
        fill_##T(acc0, (size_t)(16 * ntaps + 16), mode, 64);                                       \
        bias = mode ? (T)uniform() : (T)small_int(8);                                              \
        for (k = 0; k < ntaps; k++) base[k] = plane + k * (k + 1) / 2;                             \
        memcpy(out, out0, sizeof(T) * (size_t)(rows * ld_out + 1));                                \
        t->dw_taps_##T(rows, n, ld_in, ld_out, ntaps, base, w, bias, accumulate, out);             \
        n_checks++;                                                                                \
        for (r = 0; r < rows; r++)                                                                 \
            for (p = 0; p < ld_out; p++) {                                                         \
                cvx_index o = r * ld_out + p;                                                      \
                double e = accumulate ? (double)out0[o] : (double)bias, mag = fabs(e);             \
                if (p >= n) {                                                                      \
                    if (!SAME(out[o], out0[o]))                                                    \
                        fail(t->name, #T " dw_taps", "rows=%ld n=%ld wrote column %ld", (long)rows, \
                             (long)n, (long)p);                                                    \
                    continue;                                                                      \
                }                                                                                  \
                for (k = 0; k < ntaps; k++) {                                                      \
                    e += (double)w[k] * (double)base[k][r * ld_in + p];                            \
                    mag += fabs((double)w[k] * (double)base[k][r * ld_in + p]);                    \
                }                                                                                  \
                if (mode == 0 ? !SAME(out[o], (T)e)                                                \
                              : fabs((double)out[o] - e) > (ntaps + 2) * EPS * mag) {              \
                    fail(t->name, #T " dw_taps", "rows=%ld n=%ld ntaps=%d acc=%d [%ld,%ld]=%.9g want %.9g", \
                         (long)rows, (long)n, ntaps, accumulate, (long)r, (long)p, (double)out[o], e); \
                    r = rows;                                                                      \
                    break;                                                                         \
                }                                                                                  \
            }                                                                                      \
        memcpy(acc, acc0, sizeof(T) * (size_t)(16 * ntaps + 16));                                  \
        t->dw_dots_##T(rows, n, ld_in, ld_g, ntaps, base, g, acc);                                 \
        n_checks++;                                                                                \
        if (!SAME(acc[16 * ntaps], acc0[16 * ntaps]))                                              \
            fail(t->name, #T " dw_dots", "ntaps=%d wrote past the last tap", ntaps);               \
        for (k = 0; k < ntaps; k++) {                                                              \
            double lane[16], mag[16];                                                              \
            T lanes[16], chain[16];                                                                \
            int order_failed = 0;                                                                  \
            for (l = 0; l < 16; l++) lane[l] = (double)acc0[16 * k + l], mag[l] = fabs(lane[l]);  \
            for (l = 0; l < 16; l++) chain[l] = acc0[16 * k + l];                                  \
            for (r = 0; r < rows; r++)                                                             \
                for (p = 0; p < n; p++) {                                                          \
                    double v = (double)g[r * ld_g + p] * (double)base[k][r * ld_in + p];           \
                    lane[p % 16] += v;                                                             \
                    mag[p % 16] += fabs(v);                                                        \
                    chain[p % 16] = FMA(g[r * ld_g + p], base[k][r * ld_in + p], chain[p % 16]);   \
                }                                                                                  \
            for (l = 0; l < 16; l++) {                                                             \
                T a = acc[16 * k + l];                                                             \
                if (mode == 0 ? !SAME(a, (T)lane[l])                                               \
                              : fabs((double)a - lane[l]) > (rows * n + 2) * EPS * mag[l]) {       \
                    fail(t->name, #T " dw_dots", "rows=%ld n=%ld tap %d lane %d: %.9g want %.9g",  \
                         (long)rows, (long)n, k, l, (double)a, lane[l]);                           \
                    break;                                                                         \
                }                                                                                  \
                lanes[l] = a;                                                                      \
                /* the documented order (depthwise.inc: cvx_s_fma, as the channel blocks) */      \
                if (t->fma_order && mode == 1 && !SAME(a, chain[l]) && !order_failed) {            \
                    fail(t->name, #T " dw_dots", "order: rows=%ld n=%ld tap %d lane %d: %a, the "  \
                         "fma chain gives %a", (long)rows, (long)n, k, l, (double)a,               \
                         (double)chain[l]);                                                        \
                    order_failed = 1;                                                              \
                }                                                                                  \
            }                                                                                      \
            for (l = 8; l > 0; l /= 2) /* the documented fold, in T */                             \
                for (r = 0; r < l; r++) lanes[r] += lanes[r + l];                                  \
            n_checks++;                                                                            \
            if (!SAME(t->dw_lanes_##T(acc + 16 * k), lanes[0]))                                    \
                fail(t->name, #T " dw_lanes", "got %.9g, the 8-4-2-1 fold gives %.9g",             \
                     (double)t->dw_lanes_##T(acc + 16 * k), (double)lanes[0]);                     \
        }                                                                                          \
        free(plane), free(w), free(out), free(out0), free(g), free(acc), free(acc0);               \
    }
DEFINE_DW_CHECK(float, 5.9604644775390625e-08, fmaf, same_bits_f)
DEFINE_DW_CHECK(double, 1.1102230246251565e-16, fma, same_bits_d)

/* the padded pixel (i, j) of src (H x W at row ph, column pw) inside Hp x Wp, 0 elsewhere */
#define DEFINE_DW_PAD(T)                                                                           \
    static T dw_pad_##T(const T *src, cvx_index H, cvx_index W, cvx_index ph, cvx_index pw,       \
                        cvx_index Hp, cvx_index Wp, cvx_index i, cvx_index j)                     \
    {                                                                                              \
        if (i >= Hp || j >= Wp || i < ph || j < pw || i - ph >= H || j - pw >= W) return 0;       \
        return src[(i - ph) * W + (j - pw)];                                                       \
    }
DEFINE_DW_PAD(float)
DEFINE_DW_PAD(double)

/* poly against the padded plane, unpoly as its inverse, place, copy and finite */
#define DEFINE_DW_COPY_CHECK(T, SAME)                                                              \
    static void check_dw_copies_##T(const struct check_table *t, cvx_index H, cvx_index W,        \
                                    cvx_index ph, cvx_index pw, cvx_index sh, cvx_index sw,       \
                                    cvx_index Hp, cvx_index Wp, cvx_index na, const cvx_index *pa, \
                                    cvx_index nb, const cvx_index *pb)                            \
    {                                                                                              \
        cvx_index Hq = (Hp + sh - 1) / sh, Wq = (Wp + sw - 1) / sw, slack = 5, ld = Wq + 2;        \
        cvx_index sp = (Hq + 1) * ld, total = na * nb * Hq * Wq + slack, ia, ib, u, v, i, q;       \
        cvx_index nsrc = na * nb * sp > total ? na * nb * sp : total;                              \
        T *src = (T *)xmalloc(sizeof(T) * (size_t)(H * W + 1));                                    \
        T *dst = (T *)xmalloc(sizeof(T) * (size_t)(nsrc + 1));                                     \
        T *back = (T *)xmalloc(sizeof(T) * (size_t)(H * W + 1));                                   \
        for (i = 0; i < H * W; i++) src[i] = (T)(i + 1); /* distinct, non-zero */                  \
        for (i = 0; i <= nsrc; i++) dst[i] = (T)-7;                                                \
        t->dw_poly_##T(src, H, W, ph, pw, sh, sw, Hp, Wp, Hq, Wq, na, pa, nb, pb, slack, dst);    \
        n_checks++;                                                                                \
        for (q = 0; q <= total; q++) {                                                             \
            T want = (T)-7;                                                                        \
            if (q < na * nb * Hq * Wq) {                                                           \
                ia = q / (nb * Hq * Wq), ib = q / (Hq * Wq) % nb, u = q / Wq % Hq, v = q % Wq;     \
                want = dw_pad_##T(src, H, W, ph, pw, Hp, Wp, u * sh + pa[ia], v * sw + pb[ib]);    \
            } else if (q < total)                                                                  \
                want = 0;                                                                          \
            if (!SAME(dst[q], want)) {                                                             \
                fail(t->name, #T " dw_poly", "H=%ld W=%ld p=%ld,%ld s=%ld,%ld Hp=%ld Wp=%ld "     \
                     "na=%ld nb=%ld: [%ld]=%g want %g", (long)H, (long)W, (long)ph, (long)pw,     \
                     (long)sh, (long)sw, (long)Hp, (long)Wp, (long)na, (long)nb, (long)q,         \
                     (double)dst[q], (double)want);                                                \
                break;                                                                             \
            }                                                                                      \
        }                                                                                          \
        /* unpoly from sub-planes of pitch ld, sub-plane pitch sp */                               \
        for (i = 0; i <= nsrc; i++) dst[i] = (T)(1000 + i);                                        \
        for (i = 0; i <= H * W; i++) back[i] = (T)-7;                                              \
        t->dw_unpoly_##T(dst, H, W, ph, pw, sh, sw, Hp, Wp, na, pa, nb, pb, sp, ld, back);        \
        n_checks++;                                                                                \
        for (i = 0; i <= H * W; i++) {                                                             \
            T want = i == H * W ? (T)-7 : 0;                                                       \
            cvx_index r = i / W + ph, c = i % W + pw;                                              \
            if (i < H * W && r < Hp && c < Wp)                                                     \
                for (ia = 0; ia < na; ia++)                                                        \
                    for (ib = 0; ib < nb; ib++)                                                    \
                        if (r % sh == pa[ia] && c % sw == pb[ib])                                  \
                            want = dst[(ia * nb + ib) * sp + (r / sh) * ld + c / sw];              \
            if (!SAME(back[i], want)) {                                                            \
                fail(t->name, #T " dw_unpoly", "H=%ld W=%ld p=%ld,%ld s=%ld,%ld na=%ld nb=%ld: " \
                     "[%ld]=%g want %g", (long)H, (long)W, (long)ph, (long)pw, (long)sh,          \
                     (long)sw, (long)na, (long)nb, (long)i, (double)back[i], (double)want);       \
                break;                                                                             \
            }                                                                                      \
        }                                                                                          \
        /* place src (H x W) at (ph, pw) of a zeroed grid of pitch W + pw + 1 */                   \
        {                                                                                          \
            cvx_index lp = W + pw + 1, tot = (H + ph + 1) * lp;                                    \
            T *grid = (T *)xmalloc(sizeof(T) * (size_t)(tot + 1));                                 \
            for (i = 0; i <= tot; i++) grid[i] = (T)-7;                                            \
            t->dw_place_##T(src, H, W, tot, lp, ph, pw, grid);                                     \
            n_checks++;                                                                            \
            for (i = 0; i <= tot; i++) {                                                           \
                cvx_index r = i / lp - ph, c = i % lp - pw;                                        \
                T want = i == tot ? (T)-7 : (r >= 0 && r < H && c >= 0 && c < W) ? src[r * W + c] : 0; \
                if (!SAME(grid[i], want)) {                                                        \
                    fail(t->name, #T " dw_place", "H=%ld W=%ld: [%ld]=%g want %g", (long)H,       \
                         (long)W, (long)i, (double)grid[i], (double)want);                         \
                    break;                                                                         \
                }                                                                                  \
            }                                                                                      \
            /* copy the H x W block back out of the grid */                                       \
            for (i = 0; i <= H * W; i++) back[i] = (T)-7;                                          \
            t->dw_copy_##T(H, W, grid + ph * lp + pw, lp, back, W);                                \
            n_checks++;                                                                            \
            for (i = 0; i <= H * W; i++)                                                           \
                if (!SAME(back[i], i == H * W ? (T)-7 : src[i])) {                                 \
                    fail(t->name, #T " dw_copy", "H=%ld W=%ld: [%ld]", (long)H, (long)W, (long)i); \
                    break;                                                                         \
                }                                                                                  \
            free(grid);                                                                            \
        }                                                                                          \
        free(src), free(dst), free(back);                                                          \
    }                                                                                              \
    static void check_dw_finite_##T(const struct check_table *t)                                   \
    {                                                                                              \
        T p[80];                                                                                   \
        cvx_index n, i;                                                                            \
        int k;                                                                                     \
        for (n = 0; n < 80; n++) {                                                                 \
            for (i = 0; i < 80; i++) p[i] = (T)small_int(9);                                       \
            n_checks++;                                                                            \
            if (t->dw_finite_##T(n, p) != 1) fail(t->name, #T " dw_finite", "n=%ld finite", (long)n); \
            for (k = 0; k < 3 && n; k++) {                                                         \
                T bad = k == 0 ? (T)NAN : k == 1 ? (T)INFINITY : (T)-INFINITY;                     \
                i = (cvx_index)(rng() % (uint64_t)n);                                              \
                p[i] = bad;                                                                        \
                n_checks++;                                                                        \
                if (t->dw_finite_##T(n, p) != 0)                                                   \
                    fail(t->name, #T " dw_finite", "n=%ld missed %g at %ld", (long)n, (double)bad, \
                         (long)i);                                                                 \
                if (t->dw_finite_##T(i, p) != 1)                                                   \
                    fail(t->name, #T " dw_finite", "n=%ld read past the end", (long)i);            \
                p[i] = 1;                                                                          \
            }                                                                                      \
        }                                                                                          \
    }
DEFINE_DW_COPY_CHECK(float, same_bits_f)
DEFINE_DW_COPY_CHECK(double, same_bits_d)

/* channel blocks (lanes = channels): cvx_dw_cb_fwd against dw_taps on each lane's padded
 * plane (stride 1: the taps read it directly), and cvx_dw_cb_gw over DW_NI images (its chunks
 * of images: 14x9 goes in chunks of 3 and 2) against dw_dots over the images in order and
 * dw_lanes on the flat grid of pitch Wp: the same bits (the same sums in the same order) */
#define DW_NI 5
#define DEFINE_DW_CB_CHECK(T, SAME)                                                                \
    static void check_dw_cb_##T(const struct check_table *t, cvx_index nl, cvx_index H,           \
                                cvx_index W, cvx_index kh, cvx_index kw, cvx_index pad,           \
                                cvx_index dil, int mode)                                           \
    {                                                                                              \
        cvx_index OH = H + 2 * pad - dil * (kh - 1), OW = W + 2 * pad - dil * (kw - 1);          \
        cvx_index Hp = OH + dil * (kh - 1), Wp = OW + dil * (kw - 1), kk = kh * kw, i, j, l, q;   \
        cvx_index L = ((OH - 1) * Wp + OW + 15) / 16 * 16, P = OH * OW;                            \
        cvx_index nscr = 16 * (Hp * Wp + H * W + P + 32 * kk + 1 + (H * W > P ? H * W : P)      \
                               + (DW_NI - 1) * (Hp * Wp + P));                                     \
        cvx_index n;                                                                               \
        int epi;                                                                                   \
        T *x = (T *)xmalloc(sizeof(T) * (size_t)(DW_NI * 16 * H * W));                            \
        T *w = (T *)xmalloc(sizeof(T) * (size_t)(16 * kk));                                       \
        T *b = (T *)xmalloc(sizeof(T) * 16);                                                       \
        T *y = (T *)xmalloc(sizeof(T) * (size_t)(DW_NI * 16 * P));                                \
        T *gw = (T *)xmalloc(sizeof(T) * (size_t)(16 * kk));                                      \
        T *scr = (T *)xmalloc(sizeof(T) * (size_t)nscr);                                          \
        T *pad_ = (T *)xmalloc(sizeof(T) * (size_t)(Hp * Wp + L + 64));                           \
        T *grid = (T *)xmalloc(sizeof(T) * (size_t)(L + 16));                                     \
        T *ref = (T *)xmalloc(sizeof(T) * (size_t)P);                                             \
        T *acc = (T *)xmalloc(sizeof(T) * (size_t)(16 * kk));                                     \
        cvx_index *toff = (cvx_index *)xmalloc(sizeof(cvx_index) * (size_t)kk);                  \
        cvx_index *lists = (cvx_index *)xmalloc(sizeof(cvx_index) * (size_t)(34 + 4 * P));       \
        const T *base[64];                                                                         \
        const cvx_index ph0[] = {0};                                                               \
        fill_##T(x, (size_t)(DW_NI * 16 * H * W), mode, 8);                                       \
        fill_##T(w, (size_t)(16 * kk), mode, 8);                                                   \
        fill_##T(b, 16, mode, 8);                                                                  \
        fill_##T(y, (size_t)(DW_NI * 16 * P), mode, 8); /* the gw check's output gradient */      \
        for (i = 0; i < kh; i++)                                                                   \
            for (j = 0; j < kw; j++) toff[i * kw + j] = i * dil * Wp + j * dil;                    \
        /* cvx_dw_cb_gw's lists: the flat grid's classes (p % 16), then the rows' (ow % 16) */    \
        for (l = 0; l < 2; l++) {                                                                  \
            cvx_index k = 0, c;                                                                    \
            for (c = 0; c < 16; c++) {                                                             \
                lists[17 * l + c] = l * P + k;                                                     \
                for (q = 0; q < P; q++)                                                            \
                    if ((l ? q % OW : (q / OW) * Wp + q % OW) % 16 == c) {                         \
                        lists[34 + l * P + k] = q;                                                 \
                        lists[34 + 2 * P + l * P + k] = (q / OW) * Wp + q % OW;                    \
                        k++;                                                                       \
                    }                                                                              \
            }                                                                                      \
            lists[17 * l + 16] = l * P + k;                                                        \
        }                                                                                          \
        t->dw_cb_gw_##T(nl, DW_NI, x, 16 * H * W, y, 16 * P, H, W, pad, pad, Hp, Wp, OH, OW, 1,  \
                        1, 1, ph0, 1, ph0, (int)kk, toff, 1, lists, lists + 34,                    \
                        lists + 34 + 2 * P, scr, gw);                                              \
        for (l = 0; l < nl; l++) {                                                                 \
            for (q = 0; q < 16 * kk; q++) acc[q] = 0;                                              \
            for (n = 0; n < DW_NI; n++) {                                                          \
                const T *xn = x + n * 16 * H * W, *yn = y + n * 16 * P;                            \
                for (q = 0; q < Hp * Wp + L + 64; q++)                                             \
                    pad_[q] = q < Hp * Wp ? dw_pad_##T(xn + l * H * W, H, W, pad, pad, Hp, Wp,    \
                                                       q / Wp, q % Wp) : 0;                        \
                for (q = 0; q < L + 16; q++)                                                       \
                    grid[q] = q < (OH - 1) * Wp + OW && q % Wp < OW                                \
                                  ? yn[l * P + (q / Wp) * OW + q % Wp] : 0;                        \
                for (q = 0; q < kk; q++) base[q] = pad_ + toff[q];                                 \
                t->dw_dots_##T(1, L, 0, 0, (int)kk, base, grid, acc);                              \
            }                                                                                      \
            for (q = 0; q < kk; q++) {                                                             \
                n_checks++;                                                                        \
                if (!SAME(gw[l * kk + q], t->dw_lanes_##T(acc + 16 * q)))                          \
                    fail(t->name, #T " dw_cb_gw", "nl=%ld %ldx%ld k=%ldx%ld lane %ld tap %ld",     \
                         (long)nl, (long)H, (long)W, (long)kh, (long)kw, (long)l, (long)q);        \
            }                                                                                      \
        }                                                                                          \
        /* epi 0: none; 1: a clamp to [-1, 1]; 2: a residual (gw's input y), then the clamp */   \
        for (epi = 0; epi < 3; epi++) {                                                            \
            const T *res = epi == 2 ? y + 16 * P : NULL;                                           \
            t->dw_cb_fwd_##T(nl, x, H, W, pad, pad, Hp, Wp, OH, OW, 1, 1, (int)kk, toff, w, b,    \
                             res, epi > 0, (T)-1, (T)1, scr, y);                                   \
            for (l = 0; l < nl; l++) {                                                             \
                for (q = 0; q < Hp * Wp; q++)                                                      \
                    pad_[q] = dw_pad_##T(x + l * H * W, H, W, pad, pad, Hp, Wp, q / Wp, q % Wp);  \
                for (q = 0; q < kk; q++) base[q] = pad_ + toff[q];                                 \
                t->dw_taps_##T(OH, OW, Wp, OW, (int)kk, base, w + l * kk, b[l], 0, ref);           \
                for (q = 0; q < P; q++) {                                                          \
                    T v = res ? ref[q] + res[l * P + q] : ref[q];                                  \
                    if (epi > 0) {                                                                 \
                        v = v < (T)-1 ? (T)-1 : v;                                                 \
                        v = v > (T)1 ? (T)1 : v;                                                   \
                    }                                                                              \
                    n_checks++;                                                                    \
                    if (!SAME(y[l * P + q], v))                                                    \
                        fail(t->name, #T " dw_cb_fwd", "nl=%ld %ldx%ld k=%ldx%ld epi %d lane %ld " \
                             "[%ld]", (long)nl, (long)H, (long)W, (long)kh, (long)kw, epi,          \
                             (long)l, (long)q);                                                    \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        free(x); free(w); free(b); free(y); free(gw); free(scr); free(pad_); free(grid);           \
        free(ref); free(acc); free(toff); free(lists);                                             \
    }
DEFINE_DW_CB_CHECK(float, same_bits_f)
DEFINE_DW_CB_CHECK(double, same_bits_d)

/* cvx_dw_out: a band's rows copied out with the epilogue: y = z (+ res), then with clamp
 * v = lo if v < lo else v, hi if v > hi else v; the same operations here, so the same bits,
 * on data with NaN, +-inf and -0.0; the elements between rows (pitch ldy > cols) untouched.
 * And cvx_bias_out (the GEMM route's epilogue, in place) on the same data. */
#define DEFINE_DW_OUT_CHECK(T, SAME)                                                               \
    /* the epilogue's value: v (+ b) (+ r), then the clamp */                                      \
    static T epi_want_##T(T v, const T *b, const T *r, int clamp, T lo, T hi)                      \
    {                                                                                              \
        if (b) v = v + *b;                                                                         \
        if (r) v = v + *r;                                                                         \
        if (clamp) {                                                                               \
            v = v < lo ? lo : v;                                                                   \
            v = v > hi ? hi : v;                                                                   \
        }                                                                                          \
        return v;                                                                                  \
    }                                                                                              \
    static void check_dw_out_##T(const struct check_table *t, cvx_index rows, cvx_index cols,     \
                                 int with_res, int clamp)                                          \
    {                                                                                              \
        cvx_index ldz = cols + 3, ldr = cols + 1, ldy = cols + 2, i, r, q;                         \
        T *z = (T *)xmalloc(sizeof(T) * (size_t)(rows * ldz + 1));                                 \
        T *res = (T *)xmalloc(sizeof(T) * (size_t)(rows * ldr + 1));                               \
        T *y = (T *)xmalloc(sizeof(T) * (size_t)(rows * ldy + 1));                                 \
        T *y2 = (T *)xmalloc(sizeof(T) * (size_t)(rows * ldz + 1));                                \
        T *b = (T *)xmalloc(sizeof(T) * (size_t)rows);                                             \
        T lo = clamp == 2 ? (T)-0.5 : 0, hi = clamp == 2 ? (T)0.75 : (T)6;                         \
        int use_b;                                                                                 \
        for (i = 0; i < rows * ldz; i++) z[i] = (T)(uniform() * 10);                               \
        for (i = 0; i < rows * ldr; i++) res[i] = (T)uniform();                                    \
        for (i = 0; i < rows * ldy + 1; i++) y[i] = (T)-7;                                         \
        if (rows * cols > 4) { /* res[3] too: -0.0 + -0.0, a -0.0 at the clamp's bound 0 */      \
            z[0] = (T)NAN, z[1] = (T)INFINITY, z[2] = (T)-INFINITY, z[3] = (T)-0.0;                \
            res[3] = (T)-0.0;                                                                      \
        }                                                                                          \
        t->dw_out_##T(rows, cols, z, ldz, with_res ? res : NULL, ldr, clamp != 0, lo, hi, y, ldy); \
        n_checks++;                                                                                \
        for (r = 0; r < rows; r++)                                                                 \
            for (q = 0; q < ldy; q++) {                                                            \
                T want = q < cols ? epi_want_##T(z[r * ldz + q], NULL,                             \
                                                 with_res ? res + r * ldr + q : NULL, clamp, lo,   \
                                                 hi)                                               \
                                  : (T)-7;                                                         \
                if (!SAME(y[r * ldy + q], want)) {                                                 \
                    fail(t->name, #T " dw_out", "rows=%ld cols=%ld res=%d clamp=%d [%ld,%ld]=%g " \
                         "want %g", (long)rows, (long)cols, with_res, clamp, (long)r, (long)q,     \
                         (double)y[r * ldy + q], (double)want);                                    \
                    r = rows;                                                                      \
                    break;                                                                         \
                }                                                                                  \
            }                                                                                      \
        if (!SAME(y[rows * ldy], (T)-7)) fail(t->name, #T " dw_out", "wrote past the end");       \
        /* cvx_bias_out in place on a copy of z (pitch ldz), with a bias per row and without:     \
         * ((z + b) + res), then the clamp */                                                      \
        for (use_b = 0; use_b < 2; use_b++) {                                                      \
            for (i = 0; i < rows * ldz; i++) y2[i] = z[i];                                         \
            y2[rows * ldz] = (T)-7;                                                                \
            for (r = 0; r < rows; r++) b[r] = r == 0 ? (T)-0.0 : (T)(uniform() * 4 - 2);          \
            t->bias_out_##T(rows, cols, y2, ldz, use_b ? b : NULL, with_res ? res : NULL, ldr,   \
                            clamp != 0, lo, hi);                                                   \
            n_checks++;                                                                            \
            for (r = 0; r < rows; r++)                                                             \
                for (q = 0; q < ldz; q++) {                                                        \
                    T want = q < cols ? epi_want_##T(z[r * ldz + q], use_b ? b + r : NULL,         \
                                                     with_res ? res + r * ldr + q : NULL, clamp,   \
                                                     lo, hi)                                       \
                                      : z[r * ldz + q];                                            \
                    if (!SAME(y2[r * ldz + q], want)) {                                            \
                        fail(t->name, #T " bias_out", "rows=%ld cols=%ld b=%d res=%d clamp=%d "  \
                             "[%ld,%ld]=%g want %g", (long)rows, (long)cols, use_b, with_res,      \
                             clamp, (long)r, (long)q, (double)y2[r * ldz + q], (double)want);      \
                        r = rows;                                                                  \
                        break;                                                                     \
                    }                                                                              \
                }                                                                                  \
            if (!SAME(y2[rows * ldz], (T)-7)) fail(t->name, #T " bias_out", "wrote past the end"); \
        }                                                                                          \
        free(z), free(res), free(y), free(y2), free(b);                                            \
    }
DEFINE_DW_OUT_CHECK(float, same_bits_f)
DEFINE_DW_OUT_CHECK(double, same_bits_d)

/* cvx_dw_taps_act: dw_taps (accumulate 0) then the clamp v = lo if v < lo else v, hi if v > hi
 * else v, the same bits, written straight to rows of pitch ld_out > n (the elements between
 * rows untouched); and cvx_dw_pad1: dw_poly's contents for stride 1 (one sub-plane). */
#define DEFINE_DW_ROWS_CHECK(T, SAME)                                                              \
    static void check_dw_rows_##T(const struct check_table *t, cvx_index rows, cvx_index n,       \
                                  int ntaps, int clamp)                                            \
    {                                                                                              \
        cvx_index ld_in = n + 3, ld_out = n + 2, span = rows * ld_in + 40 * 41 / 2 + 1, r, p;      \
        T *plane = (T *)xmalloc(sizeof(T) * (size_t)span);                                         \
        T *w = (T *)xmalloc(sizeof(T) * (size_t)(ntaps + 1));                                      \
        T *ref = (T *)xmalloc(sizeof(T) * (size_t)(rows * ld_out + 1));                            \
        T *out = (T *)xmalloc(sizeof(T) * (size_t)(rows * ld_out + 1));                            \
        const T *base[32];                                                                         \
        T bias = (T)uniform(), lo = clamp == 2 ? (T)-0.5 : 0, hi = clamp == 2 ? (T)0.75 : (T)6;    \
        int k;                                                                                     \
        fill_##T(plane, (size_t)span, 1, 8);                                                       \
        for (p = 0; p < span; p++) plane[p] = plane[p] * 4;                                        \
        if (span > 3) plane[1] = (T)NAN, plane[2] = (T)INFINITY, plane[3] = (T)-INFINITY;         \
        fill_##T(w, (size_t)(ntaps + 1), 1, 8);                                                    \
        for (k = 0; k < ntaps; k++) base[k] = plane + k * (k + 1) / 2;                             \
        for (p = 0; p <= rows * ld_out; p++) ref[p] = out[p] = (T)-7;                              \
        t->dw_taps_##T(rows, n, ld_in, ld_out, ntaps, base, w, bias, 0, ref);                      \
        t->dw_taps_act_##T(rows, n, ld_in, ld_out, ntaps, base, w, bias, clamp != 0, lo, hi, out); \
        n_checks++;                                                                                \
        for (r = 0; r < rows; r++)                                                                 \
            for (p = 0; p < ld_out; p++) {                                                         \
                T want = ref[r * ld_out + p];                                                      \
                if (p < n && clamp) {                                                              \
                    want = want < lo ? lo : want;                                                  \
                    want = want > hi ? hi : want;                                                  \
                }                                                                                  \
                if (!SAME(out[r * ld_out + p], want)) {                                            \
                    fail(t->name, #T " dw_taps_act", "rows=%ld n=%ld ntaps=%d clamp=%d [%ld,%ld]=%g " \
                         "want %g", (long)rows, (long)n, ntaps, clamp, (long)r, (long)p,           \
                         (double)out[r * ld_out + p], (double)want);                               \
                    r = rows;                                                                      \
                    break;                                                                         \
                }                                                                                  \
            }                                                                                      \
        if (!SAME(out[rows * ld_out], (T)-7)) fail(t->name, #T " dw_taps_act", "wrote past the end"); \
        free(plane), free(w), free(ref), free(out);                                                \
    }                                                                                              \
    static void check_dw_pad1_##T(const struct check_table *t, cvx_index H, cvx_index W,          \
                                  cvx_index ph, cvx_index pw, cvx_index Hp, cvx_index Wp)          \
    {                                                                                              \
        static const cvx_index ph0[] = {0};                                                        \
        cvx_index slack = 5, total = Hp * Wp + slack, i;                                           \
        T *src = (T *)xmalloc(sizeof(T) * (size_t)(H * W + 1));                                    \
        T *want = (T *)xmalloc(sizeof(T) * (size_t)(total + 1));                                   \
        T *got = (T *)xmalloc(sizeof(T) * (size_t)(total + 1));                                    \
        for (i = 0; i < H * W; i++) src[i] = (T)(i + 1); /* distinct, non-zero */                  \
        for (i = 0; i <= total; i++) want[i] = (T)-7, got[i] = (T)-5;                              \
        t->dw_poly_##T(src, H, W, ph, pw, 1, 1, Hp, Wp, Hp, Wp, 1, ph0, 1, ph0, slack, want);      \
        t->dw_pad1_##T(src, H, W, ph, pw, Hp, Wp, slack, got);                                     \
        n_checks++;                                                                                \
        for (i = 0; i < total; i++)                                                                \
            if (!SAME(got[i], want[i])) {                                                          \
                fail(t->name, #T " dw_pad1", "H=%ld W=%ld p=%ld,%ld Hp=%ld Wp=%ld: [%ld]=%g want %g", \
                     (long)H, (long)W, (long)ph, (long)pw, (long)Hp, (long)Wp, (long)i,           \
                     (double)got[i], (double)want[i]);                                             \
                break;                                                                             \
            }                                                                                      \
        if (!SAME(got[total], (T)-5)) fail(t->name, #T " dw_pad1", "wrote past the end");         \
        free(src), free(want), free(got);                                                          \
    }
DEFINE_DW_ROWS_CHECK(float, same_bits_f)
DEFINE_DW_ROWS_CHECK(double, same_bits_d)

static void check_dw(const struct check_table *t)
{
    static const int taps[] = {0, 1, 2, 3, 4, 8, 9, 10, 12, 13, 18, 25};
    static const cvx_index ph0[] = {0}, ph1[] = {1}, ph01[] = {0, 1}, ph10[] = {1, 0};
    static const cvx_index ph012[] = {0, 1, 2}, ph02[] = {0, 2};
    cvx_index n, sh, sw, pad, extra;
    int k;
    for (n = 0; n <= 70; n += 1 + (n > 20) * 6)
        for (k = 0; k < (int)(sizeof taps / sizeof taps[0]); k++) {
            check_dw_float(t, 1 + n % 3, n, taps[k], k % 2, (int)(n % 2));
            check_dw_double(t, 1 + n % 3, n, taps[k], 1 - k % 2, (int)(1 - n % 2));
        }
    check_dw_float(t, 2, 1001, 9, 0, 1);
    check_dw_double(t, 3, 333, 3, 1, 0);
    for (sh = 1; sh <= 3; sh++)
        for (sw = 1; sw <= 3; sw++)
            for (pad = 0; pad <= 2; pad++)
                for (extra = -1; extra <= 2; extra++) {
                    cvx_index H = 5 + sh, W = 7 + 2 * sw, Hp = H + 2 * pad + extra;
                    cvx_index Wp = W + 2 * pad - extra;
                    const cvx_index *pa = sh == 1 ? ph0 : sh == 2 ? ph01 : ph012;
                    const cvx_index *pb = sw == 1 ? ph0 : sw == 2 ? (extra % 2 ? ph10 : ph01) : ph012;
                    check_dw_copies_float(t, H, W, pad, pad + 1, sh, sw, Hp, Wp, sh, pa, sw, pb);
                    check_dw_copies_double(t, H, W, pad + 1, pad, sh, sw, Hp, Wp, sh, pa, sw, pb);
                    /* a subset of the phases (the taps of a dilated kernel read only some) */
                    if (sh > 1 && sw > 1) {
                        check_dw_copies_float(t, H, W, pad, pad, sh, sw, Hp, Wp, 1, ph1,
                                              2, sw == 3 ? ph02 : ph10);
                        check_dw_copies_double(t, H, W, pad, pad, sh, sw, Hp, Wp, 1, ph0, 1, ph1);
                    }
                }
    check_dw_finite_float(t);
    check_dw_finite_double(t);
    {
        static const cvx_index cb[][6] = {{16, 7, 7, 3, 3, 1}, {5, 14, 9, 3, 3, 1},
                                          {16, 6, 6, 5, 5, 2}, {3, 5, 8, 1, 4, 0},
                                          {16, 9, 7, 2, 3, 1}, {1, 1, 1, 1, 1, 0}};
        for (k = 0; k < (int)(sizeof cb / sizeof cb[0]); k++) {
            check_dw_cb_float(t, cb[k][0], cb[k][1], cb[k][2], cb[k][3], cb[k][4], cb[k][5],
                              1 + k % 2, k % 2);
            check_dw_cb_double(t, cb[k][0], cb[k][1], cb[k][2], cb[k][3], cb[k][4], cb[k][5],
                               1 + (k + 1) % 2, (k + 1) % 2);
        }
    }
    for (n = 0; n <= 40; n += 1 + (n > 18) * 4)
        for (k = 0; k < 6; k++) {
            check_dw_out_float(t, 1 + n % 3, n, k % 2, k / 2);
            check_dw_out_double(t, 1 + (n + 1) % 3, n, 1 - k % 2, k / 2);
        }
    for (n = 1; n <= 70; n += 1 + (n > 20) * 6)
        for (k = 0; k < 12; k++) {
            static const int nt[] = {9, 9, 9, 1, 3, 25};
            check_dw_rows_float(t, 1 + n % 3, n, nt[k % 6], k / 6 + (k % 3 == 0));
            check_dw_rows_double(t, 1 + (n + 1) % 3, n, nt[k % 6], k / 6 + (k % 3 == 1));
        }
    for (n = 0; n < 48; n++) /* H, W 1..4; padding 0..2; Hp, Wp from the plane -1 to +3 */
        for (k = 0; k < 5; k++) {
            cvx_index H = 1 + n % 4, W = 1 + n / 4 % 4, pad = n / 16;
            check_dw_pad1_float(t, H, W, pad, 2 - pad, H + pad + k - 1 > 0 ? H + pad + k - 1 : 1,
                                W + 2 + k - 1);
            check_dw_pad1_double(t, H, W, 2 - pad, pad, H + 2 + k - 1, W + pad + k);
        }
}

/* ========================== pooling rows (pool.inc) ========================== */
/* max: the window of output ow is rows hs + i*dh (i0 <= i < i1) x columns ow*sw - pw + j*dw
 * (j < kw), scanned row-major; a value replaces the maximum when greater or NaN; the index of
 * the first tap when none does. avg: the same window (dh = dw = 1) added from 0 in row-major
 * order, divided by div: the same additions as the naive loop, so bitwise equal on any data.
 * Outputs outside [ow0, ow1) stay untouched. Data: small integers (ties), -0.0, NaNs of
 * distinct payloads, +-inf. Without an index array (ip NULL) the values must be the same bits. */
#define DEFINE_POOL_CHECK(T, SAME)                                                                 \
    /* a quiet NaN whose payload is i + 1 (which NaN a window keeps shows in its bits) */         \
    static T pool_nan_##T(cvx_index i)                                                             \
    {                                                                                              \
        T r;                                                                                       \
        if (sizeof(T) == 4) {                                                                      \
            uint32_t u = 0x7FC00000u | (uint32_t)((i + 1) & 0x3FFFFF);                             \
            memcpy(&r, &u, sizeof u);                                                              \
        } else {                                                                                   \
            uint64_t u = 0x7FF8000000000000ull | (uint64_t)(i + 1);                                \
            memcpy(&r, &u, sizeof u);                                                              \
        }                                                                                          \
        return r;                                                                                  \
    }                                                                                              \
    static void pool_fill_##T(T *x, cvx_index n, int mode)                                         \
    {                                                                                              \
        cvx_index i;                                                                               \
        for (i = 0; i < n; i++) {                                                                  \
            uint64_t c = rng() % 40;                                                               \
            x[i] = mode ? (T)uniform() : (T)small_int(3);                                          \
            if (c == 0) x[i] = pool_nan_##T(i);                                                    \
            if (c == 1) x[i] = (T)INFINITY;                                                        \
            if (c == 2 || c == 3) x[i] = (T)-INFINITY;                                             \
            if (c == 4) x[i] = (T)-0.0;                                                            \
        }                                                                                          \
    }                                                                                              \
    static void check_pool_##T(const struct check_table *t, cvx_index H, cvx_index W,             \
                               cvx_index kh, cvx_index kw, cvx_index sh, cvx_index sw,            \
                               cvx_index ph, cvx_index pw, cvx_index dh, cvx_index dw, int mode)  \
    {                                                                                              \
        cvx_index OW, OH, oh, ow, ow0, ow1, i, j;                                                  \
        T *x, *y, *v;                                                                              \
        int64_t *ix;                                                                               \
        if (W + 2 * pw < dw * (kw - 1) + 1 || H + 2 * ph < dh * (kh - 1) + 1) return;              \
        OW = (W + 2 * pw - dw * (kw - 1) - 1) / sw + 1;                                            \
        OH = (H + 2 * ph - dh * (kh - 1) - 1) / sh + 1;                                            \
        x = (T *)xmalloc(sizeof(T) * (size_t)(H * W));                                             \
        y = (T *)xmalloc(sizeof(T) * (size_t)(OW + 1));                                            \
        v = (T *)xmalloc(sizeof(T) * (size_t)(OW + 1));                                            \
        ix = (int64_t *)xmalloc(sizeof(int64_t) * (size_t)(OW + 1));                              \
        pool_fill_##T(x, H * W, mode);                                                             \
        /* the interior columns: the whole window inside the plane horizontally */                 \
        for (ow0 = 0; ow0 < OW && ow0 * sw - pw < 0; ow0++) {}                                     \
        for (ow1 = ow0; ow1 < OW && ow1 * sw - pw + (kw - 1) * dw < W; ow1++) {}                   \
        for (oh = 0; oh < OH; oh++) {                                                              \
            cvx_index hs = oh * sh - ph, i0 = 0, i1 = kh;                                          \
            while (i0 < kh && hs + i0 * dh < 0) i0++;                                              \
            while (i1 > i0 && hs + (i1 - 1) * dh >= H) i1--;                                       \
            for (ow = 0; ow <= OW; ow++) y[ow] = (T)-7, ix[ow] = -7;                               \
            t->pl_max_row_##T(x, W, hs, i0, i1, dh, kw, sw, pw, dw, ow0, ow1, y, ix);             \
            n_checks++;                                                                            \
            for (ow = 0; ow <= OW; ow++) {                                                         \
                T m = (T)-INFINITY, want = (T)-7;                                                  \
                int64_t b = -7;                                                                    \
                if (ow >= ow0 && ow < ow1) {                                                       \
                    b = (hs + i0 * dh) * W + ow * sw - pw;                                         \
                    for (i = i0; i < i1; i++)                                                      \
                        for (j = 0; j < kw; j++) {                                                 \
                            cvx_index at = (hs + i * dh) * W + ow * sw - pw + j * dw;              \
                            if (x[at] > m || x[at] != x[at]) m = x[at], b = at;                    \
                        }                                                                          \
                    want = m;                                                                      \
                }                                                                                  \
                if (!SAME(y[ow], want) || ix[ow] != b) {                                           \
                    fail(t->name, #T " pl_max_row", "H=%ld W=%ld k=%ld,%ld s=%ld,%ld p=%ld,%ld " \
                         "d=%ld,%ld oh=%ld ow=%ld: %g@%lld want %g@%lld", (long)H, (long)W,       \
                         (long)kh, (long)kw, (long)sh, (long)sw, (long)ph, (long)pw, (long)dh,    \
                         (long)dw, (long)oh, (long)ow, (double)y[ow], (long long)ix[ow],          \
                         (double)want, (long long)b);                                              \
                    break;                                                                         \
                }                                                                                  \
            }                                                                                      \
            /* values only (no index array): the same bits */                                   \
            for (ow = 0; ow <= OW; ow++) v[ow] = (T)-7;                                            \
            t->pl_max_row_##T(x, W, hs, i0, i1, dh, kw, sw, pw, dw, ow0, ow1, v, NULL);           \
            n_checks++;                                                                            \
            for (ow = 0; ow <= OW; ow++)                                                           \
                if (!SAME(v[ow], y[ow])) {                                                         \
                    fail(t->name, #T " pl_max_row values", "H=%ld W=%ld k=%ld,%ld s=%ld,%ld "     \
                         "oh=%ld ow=%ld: %g want %g", (long)H, (long)W, (long)kh, (long)kw,       \
                         (long)sh, (long)sw, (long)oh, (long)ow, (double)v[ow], (double)y[ow]);   \
                    break;                                                                         \
                }                                                                                  \
            if (dh == 1 && dw == 1) {                                                              \
                T div = (T)(mode ? 3.0 : (double)(kh * kw));                                       \
                for (ow = 0; ow <= OW; ow++) y[ow] = (T)-7;                                        \
                t->pl_avg_row_##T(x, W, hs, i0, i1, kw, sw, pw, ow0, ow1, div, y);                 \
                n_checks++;                                                                        \
                for (ow = 0; ow <= OW; ow++) {                                                     \
                    T s = 0, want = (T)-7;                                                         \
                    if (ow >= ow0 && ow < ow1) {                                                   \
                        for (i = i0; i < i1; i++)                                                  \
                            for (j = 0; j < kw; j++) s += x[(hs + i) * W + ow * sw - pw + j];      \
                        want = s / div;                                                            \
                    }                                                                              \
                    if (!SAME(y[ow], want) && !(y[ow] != y[ow] && want != want)) {                 \
                        fail(t->name, #T " pl_avg_row", "H=%ld W=%ld k=%ld,%ld s=%ld,%ld "        \
                             "p=%ld,%ld oh=%ld ow=%ld: %g want %g", (long)H, (long)W, (long)kh,   \
                             (long)kw, (long)sh, (long)sw, (long)ph, (long)pw, (long)oh, (long)ow, \
                             (double)y[ow], (double)want);                                         \
                        break;                                                                     \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
            /* whole 2x2 / 3x3 windows: rows inside the plane, outputs [ow0, ow1) */               \
            if ((kh == 2 || kh == 3) && kw == kh && dh == 1 && dw == 1 && i0 == 0 && i1 == kh &&   \
                ow1 > ow0) {                                                                       \
                const T *r0 = x + hs * W + ow0 * sw - pw;                                          \
                int64_t base = (int64_t)(hs * W + ow0 * sw - pw);                                  \
                for (ow = 0; ow <= OW; ow++) y[ow] = (T)-7, ix[ow] = -7;                           \
                if (kh == 3)                                                                       \
                    t->pl_max3_##T(ow1 - ow0, r0, W, sw, base, y, ix);                             \
                else                                                                               \
                    t->pl_max2_##T(ow1 - ow0, r0, W, sw, base, y, ix);                             \
                n_checks++;                                                                        \
                for (ow = 0; ow <= OW; ow++) {                                                     \
                    T want = (T)-7, m;                                                             \
                    int64_t b = -7;                                                                \
                    if (ow < ow1 - ow0) {                                                          \
                        cvx_index c0 = hs * W + (ow0 + ow) * sw - pw;                              \
                        m = x[c0], b = c0;                                                         \
                        for (i = 0; i < kh; i++)                                                   \
                            for (j = 0; j < kw; j++) {                                             \
                                cvx_index at = c0 + i * W + j;                                     \
                                if (i + j > 0 && (x[at] > m || x[at] != x[at])) m = x[at], b = at; \
                            }                                                                      \
                        want = m;                                                                  \
                    }                                                                              \
                    if (!SAME(y[ow], want) || ix[ow] != b) {                                       \
                        fail(t->name, #T " pl_max2/3", "W=%ld k=%ld s=%ld oh=%ld q=%ld: %g@%lld " \
                             "want %g@%lld", (long)W, (long)kh, (long)sw, (long)oh, (long)ow,     \
                             (double)y[ow], (long long)ix[ow], (double)want, (long long)b);        \
                        break;                                                                     \
                    }                                                                              \
                }                                                                                  \
                for (ow = 0; ow <= OW; ow++) v[ow] = (T)-7;                                        \
                if (kh == 3)                                                                       \
                    t->pl_max3_##T(ow1 - ow0, r0, W, sw, base, v, NULL);                           \
                else                                                                               \
                    t->pl_max2_##T(ow1 - ow0, r0, W, sw, base, v, NULL);                           \
                n_checks++;                                                                        \
                for (ow = 0; ow <= OW; ow++)                                                       \
                    if (!SAME(v[ow], y[ow])) {                                                     \
                        fail(t->name, #T " pl_max2/3 values", "W=%ld k=%ld s=%ld oh=%ld q=%ld: "  \
                             "%g want %g", (long)W, (long)kh, (long)sw, (long)oh, (long)ow,       \
                             (double)v[ow], (double)y[ow]);                                        \
                        break;                                                                     \
                    }                                                                              \
            }                                                                                      \
        }                                                                                          \
        free(x), free(y), free(v), free(ix);                                                       \
    }                                                                                              \
    /* pl_back2: n outputs of one row of a 2x2 stride-2 pool; indices in their windows (a random \
     * tap each) give 0 + g at the tap and 0 elsewhere in both grad rows, bit for bit, and 1;      \
     * one index elsewhere (another window, the next row pair, -1) gives 0. Grads: +-0, +-inf,    \
     * NaN and random values. */                                                                   \
    static void check_back2_##T(const struct check_table *t, cvx_index n, cvx_index W)            \
    {                                                                                              \
        cvx_index q, k, bad;                                                                       \
        T *gy = (T *)xmalloc(sizeof(T) * (size_t)n);                                               \
        T *g = (T *)xmalloc(sizeof(T) * (size_t)(3 * W));                                          \
        int64_t *ix = (int64_t *)xmalloc(sizeof(int64_t) * (size_t)n), base = 5 * (int64_t)W;    \
        for (q = 0; q < n; q++) {                                                                  \
            uint64_t c = rng() % 8;                                                                \
            gy[q] = c == 0 ? (T)-0.0 : c == 1 ? (T)0.0 : c == 2 ? (T)INFINITY : c == 3 ? (T)NAN : \
                    (T)uniform();                                                                  \
            ix[q] = base + 2 * q + (int64_t)(rng() % 2) + (int64_t)(rng() % 2) * W;               \
        }                                                                                          \
        for (k = 0; k < 3 * W; k++) g[k] = (T)-7;                                                  \
        n_checks++;                                                                                \
        if (!t->pl_back2_##T(n, gy, ix, base, W, g, g + W))                                        \
            fail(t->name, #T " pl_back2", "n=%ld W=%ld: refused its own windows", (long)n,        \
                 (long)W);                                                                         \
        for (k = 0; k < 3 * W; k++) {                                                              \
            T want = (T)-7;                                                                        \
            cvx_index r = k / W, col = k % W;                                                      \
            if (r < 2 && col < 2 * n)                                                              \
                want = ix[col / 2] == base + r * W + col ? (T)0 + gy[col / 2] : (T)0;             \
            if (!SAME(g[k], want) && !(g[k] != g[k] && want != want)) {                            \
                fail(t->name, #T " pl_back2", "n=%ld W=%ld row %ld col %ld: %g want %g",          \
                     (long)n, (long)W, (long)r, (long)col, (double)g[k], (double)want);            \
                break;                                                                             \
            }                                                                                      \
        }                                                                                          \
        for (bad = 0; bad < n; bad++) {                                                            \
            int64_t keep = ix[bad];                                                                \
            uint64_t c = rng() % 3;                                                                \
            ix[bad] = c == 0 ? -1 : c == 1 ? base + 2 * W + 2 * bad : base + 2 * bad + W + 2;          \
            n_checks++;                                                                            \
            if (t->pl_back2_##T(n, gy, ix, base, W, g, g + W))                                     \
                fail(t->name, #T " pl_back2", "n=%ld W=%ld: accepted index %lld at %ld", (long)n,  \
                     (long)W, (long long)ix[bad], (long)bad);                                      \
            ix[bad] = keep;                                                                        \
        }                                                                                          \
        free(gy), free(g), free(ix);                                                               \
    }                                                                                              \
    /* pl_max3_rows: `rows` output rows of whole 3x3 windows at stride st (1 or 2) at once (the    \
     * shared rows) give the bits of pl_max3 row by row, values and indices, and the same values   \
     * without indices; outputs past n in each row stay untouched. */                              \
    static void check_max3_rows_##T(const struct check_table *t, cvx_index rows, cvx_index n,      \
                                    cvx_index W, int mode, cvx_index st)                           \
    {                                                                                              \
        cvx_index H = st * rows + 3 - st, OW = n + 3, j, q;                                        \
        T *x = (T *)xmalloc(sizeof(T) * (size_t)(H * W));                                          \
        T *y = (T *)xmalloc(sizeof(T) * (size_t)(rows * OW));                                      \
        T *v = (T *)xmalloc(sizeof(T) * (size_t)(rows * OW));                                      \
        T *y1 = (T *)xmalloc(sizeof(T) * (size_t)n);                                               \
        int64_t *ix = (int64_t *)xmalloc(sizeof(int64_t) * (size_t)(rows * OW));                   \
        int64_t *ix1 = (int64_t *)xmalloc(sizeof(int64_t) * (size_t)n), base = 3 * (int64_t)W;     \
        pool_fill_##T(x, H * W, mode);                                                             \
        for (q = 0; q < rows * OW; q++) y[q] = v[q] = (T)-7, ix[q] = -7;                           \
        t->pl_max3_rows_##T(rows, n, st, x, W, base, OW, y, ix);                                   \
        t->pl_max3_rows_##T(rows, n, st, x, W, base, OW, v, NULL);                                 \
        for (j = 0; j < rows; j++) {                                                               \
            t->pl_max3_##T(n, x + st * j * W, W, st, base + st * j * (int64_t)W, y1, ix1);         \
            n_checks++;                                                                            \
            for (q = 0; q < OW; q++) {                                                             \
                T want = q < n ? y1[q] : (T)-7;                                                    \
                int64_t b = q < n ? ix1[q] : -7;                                                   \
                if (!SAME(y[j * OW + q], want) || ix[j * OW + q] != b ||                           \
                    !SAME(v[j * OW + q], want)) {                                                  \
                    fail(t->name, #T " pl_max3_rows", "s=%ld rows=%ld n=%ld W=%ld j=%ld q=%ld: "   \
                         "%g@%lld (values %g) want %g@%lld", (long)st, (long)rows, (long)n,        \
                         (long)W, (long)j, (long)q, (double)y[j * OW + q],                         \
                         (long long)ix[j * OW + q], (double)v[j * OW + q], (double)want,           \
                         (long long)b);                                                            \
                    break;                                                                         \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        free(x), free(y), free(v), free(y1), free(ix), free(ix1);                                  \
    }                                                                                              \
    /* x (H x W) from pool_fill (mode); special 0: without NaN and -0.0 (the values-only kernels'   \
     * fast paths); 1: that plus one NaN and a -0.0 / +0.0 tie that the rule and a column-first    \
     * order break differently, its window's top-left corner a multiple of `align` (a 2x2         \
     * stride-2 window's: 2); 2: pool_fill's dense NaNs, infinities and -0.0 */                    \
    static void pool_special_##T(T *x, cvx_index H, cvx_index W, int mode, int special,           \
                                 cvx_index align)                                                  \
    {                                                                                              \
        cvx_index i;                                                                               \
        pool_fill_##T(x, H * W, mode);                                                             \
        if (special < 2)                                                                           \
            for (i = 0; i < H * W; i++)                                                            \
                if (x[i] != x[i] || (x[i] == 0 && signbit(x[i]))) x[i] = (T)1.5;                   \
        if (special == 1 && H >= 2 && W >= 2) {                                                    \
            cvx_index r = (cvx_index)(rng() % (uint64_t)H), c = (cvx_index)(rng() % (uint64_t)W); \
            x[r * W + c] = pool_nan_##T(r * W + c);                                                \
            r = align * (cvx_index)(rng() % (uint64_t)((H - 2 + align) / align));                  \
            c = align * (cvx_index)(rng() % (uint64_t)((W - 2 + align) / align));                  \
            x[r * W + c] = (T)-INFINITY, x[r * W + c + 1] = (T)-0.0; /* a tie of zeros */          \
            x[(r + 1) * W + c] = (T)0.0, x[(r + 1) * W + c + 1] = (T)-INFINITY;                    \
        }                                                                                          \
    }                                                                                              \
    /* y (OH x OW, each element -7 before the kernel ran) of a values-only max pool, kh x kw      \
     * windows at stride sh, sw with padding ph, pw: output rows [oh0, oh1) hold the rule scanned \
     * here in row-major order over the taps inside the plane (-inf for none), the others -7 */   \
    static void pool_rows_check_##T(const struct check_table *t, const char *what, const T *x,    \
                                    cvx_index H, cvx_index W, const T *y, cvx_index OH,            \
                                    cvx_index OW, cvx_index oh0, cvx_index oh1, cvx_index kh,      \
                                    cvx_index kw, cvx_index sh, cvx_index sw, cvx_index ph,        \
                                    cvx_index pw, int special)                                     \
    {                                                                                              \
        cvx_index oh, q, i, j;                                                                     \
        n_checks++;                                                                                \
        for (oh = 0; oh < OH; oh++)                                                                \
            for (q = 0; q < OW; q++) {                                                             \
                T want = (T)-7, m = (T)-INFINITY;                                                  \
                int first = 1;                                                                     \
                if (oh >= oh0 && oh < oh1) {                                                       \
                    for (i = sh * oh - ph; i < sh * oh - ph + kh; i++)                             \
                        for (j = sw * q - pw; j < sw * q - pw + kw; j++) {                         \
                            T v;                                                                   \
                            if (i < 0 || i >= H || j < 0 || j >= W) continue;                      \
                            v = x[i * W + j];                                                      \
                            if (first || v > m || v != v) m = v;                                   \
                            first = 0;                                                             \
                        }                                                                          \
                    want = m;                                                                      \
                }                                                                                  \
                if (!SAME(y[oh * OW + q], want)) {                                                 \
                    fail(t->name, what, "H=%ld W=%ld OH=%ld OW=%ld k=%ld,%ld s=%ld,%ld "            \
                         "p=%ld,%ld rows %ld..%ld special %d: oh=%ld q=%ld: %g want %g", (long)H,  \
                         (long)W, (long)OH, (long)OW, (long)kh, (long)kw, (long)sh, (long)sw,      \
                         (long)ph, (long)pw, (long)oh0, (long)oh1, special, (long)oh, (long)q,     \
                         (double)y[oh * OW + q], (double)want);                                    \
                    return;                                                                        \
                }                                                                                  \
            }                                                                                      \
    }                                                                                              \
    /* pl_vmax3s2 (values only, column maxima first where the rows hold no NaN and no -0.0):     \
     * output rows [oh0, oh1) of a 3x3 stride-2 pool with padding ph, pw give the bits of the     \
     * rule; the other rows stay untouched; special as pool_special's. */                         \
    static void check_vmax3s2_##T(const struct check_table *t, cvx_index H, cvx_index W,          \
                                  cvx_index ph, cvx_index pw, cvx_index oh0, cvx_index oh1,        \
                                  int mode, int special)                                           \
    {                                                                                              \
        cvx_index OH = (H + 2 * ph - 3) / 2 + 1, OW = (W + 2 * pw - 3) / 2 + 1, q;                 \
        T *x = (T *)xmalloc(sizeof(T) * (size_t)(H * W));                                          \
        T *y = (T *)xmalloc(sizeof(T) * (size_t)(OH * OW));                                        \
        pool_special_##T(x, H, W, mode, special, 1);                                               \
        for (q = 0; q < OH * OW; q++) y[q] = (T)-7;                                                \
        t->pl_vmax3s2_##T(x, H, W, ph, pw, OW, oh0, oh1, y);                                       \
        pool_rows_check_##T(t, #T " pl_vmax3s2", x, H, W, y, OH, OW, oh0, oh1, 3, 3, 2, 2, ph,  \
                            pw, special);                                                          \
        free(x), free(y);                                                                          \
    }                                                                                              \
    /* pl_max3_lanes (NULL where the ISA has no register rows): output rows [oh0, oh1) of a 3x3  \
     * pool at stride st (1 or 2) with padding ph, pw and ceil_mode's windows (ceil) give the     \
     * rule's value bits and index (the first tap inside the plane, then greater or NaN), with   \
     * and without the index array; the other rows stay untouched. */                            \
    static void check_max3_lanes_##T(const struct check_table *t, cvx_index H, cvx_index W,      \
                                     cvx_index st, cvx_index ph, cvx_index pw, int ceil,          \
                                     int a0, int a1, int mode, int special)                       \
    {                                                                                              \
        cvx_index OH = (H + 2 * ph - 3 + (ceil ? st - 1 : 0)) / st + 1;                            \
        cvx_index OW = (W + 2 * pw - 3 + (ceil ? st - 1 : 0)) / st + 1, q, oh, oh0, oh1, i, j;     \
        T *x, *y, *v;                                                                              \
        int64_t *ix;                                                                               \
        if (!t->pl_max3_lanes_##T || H + 2 * ph < 3 || W + 2 * pw < 3) return;                     \
        if (ceil && (OH - 1) * st >= H + ph) OH--; /* PyTorch's: the last window starts inside */ \
        if (ceil && (OW - 1) * st >= W + pw) OW--;                                                 \
        oh0 = OH * a0 / 4, oh1 = OH * a1 / 4 > oh0 ? OH * a1 / 4 : oh0 + 1;                        \
        x = (T *)xmalloc(sizeof(T) * (size_t)(H * W));                                             \
        y = (T *)xmalloc(sizeof(T) * (size_t)(OH * OW));                                           \
        v = (T *)xmalloc(sizeof(T) * (size_t)(OH * OW));                                           \
        ix = (int64_t *)xmalloc(sizeof(int64_t) * (size_t)(OH * OW));                              \
        pool_special_##T(x, H, W, mode, special, 1);                                               \
        for (q = 0; q < OH * OW; q++) y[q] = v[q] = (T)-7, ix[q] = -7;                             \
        t->pl_max3_lanes_##T(x, H, W, st, ph, pw, OW, oh0, oh1, y, ix);                            \
        t->pl_max3_lanes_##T(x, H, W, st, ph, pw, OW, oh0, oh1, v, NULL);                          \
        n_checks++;                                                                                \
        for (oh = 0; oh < OH; oh++)                                                                \
            for (q = 0; q < OW; q++) {                                                             \
                T want = (T)-7, m = (T)-INFINITY;                                                  \
                int64_t b = -7;                                                                    \
                int first = 1;                                                                     \
                if (oh >= oh0 && oh < oh1) {                                                       \
                    for (i = st * oh - ph; i < st * oh - ph + 3; i++)                              \
                        for (j = st * q - pw; j < st * q - pw + 3; j++) {                          \
                            T e;                                                                   \
                            if (i < 0 || i >= H || j < 0 || j >= W) continue;                      \
                            e = x[i * W + j];                                                      \
                            if (first || e > m || e != e) m = e, b = i * W + j;                    \
                            first = 0;                                                             \
                        }                                                                          \
                    want = m;                                                                      \
                }                                                                                  \
                if (!SAME(y[oh * OW + q], want) || ix[oh * OW + q] != b ||                         \
                    !SAME(v[oh * OW + q], want)) {                                                 \
                    fail(t->name, #T " pl_max3_lanes", "H=%ld W=%ld s=%ld p=%ld,%ld ceil %d "      \
                         "rows %ld..%ld special %d: oh=%ld q=%ld: %g@%lld (values %g) want "       \
                         "%g@%lld", (long)H, (long)W, (long)st, (long)ph, (long)pw, ceil,          \
                         (long)oh0, (long)oh1, special, (long)oh, (long)q,                         \
                         (double)y[oh * OW + q], (long long)ix[oh * OW + q],                       \
                         (double)v[oh * OW + q], (double)want, (long long)b);                      \
                    oh = OH;                                                                       \
                    break;                                                                         \
                }                                                                                  \
            }                                                                                      \
        free(x), free(y), free(v), free(ix);                                                       \
    }                                                                                              \
    /* pl_vmax2s2 (values only, 2x2 stride 2 without padding, a plane's rows in one call):       \
     * output rows [oh0, oh1) of OH x OW (OW and OH may take ceil_mode's windows over the right   \
     * and bottom edges) give the bits of the rule; the other rows stay untouched. */             \
    static void check_vmax2s2_##T(const struct check_table *t, cvx_index H, cvx_index W,          \
                                  cvx_index OH, cvx_index OW, cvx_index oh0, cvx_index oh1,        \
                                  int mode, int special)                                           \
    {                                                                                              \
        cvx_index q;                                                                               \
        T *x = (T *)xmalloc(sizeof(T) * (size_t)(H * W));                                          \
        T *y = (T *)xmalloc(sizeof(T) * (size_t)(OH * OW));                                        \
        pool_special_##T(x, H, W, mode, special, 2);                                               \
        for (q = 0; q < OH * OW; q++) y[q] = (T)-7;                                                \
        t->pl_vmax2s2_##T(x, H, W, OW, oh0, oh1, y);                                               \
        pool_rows_check_##T(t, #T " pl_vmax2s2", x, H, W, y, OH, OW, oh0, oh1, 2, 2, 2, 2, 0, 0,  \
                            special);                                                              \
        free(x), free(y);                                                                          \
    }                                                                                              \
    /* pl_vmax_sep (values only, no dilation: column maxima first where the window rows hold no   \
     * NaN and no -0.0, runs of whole rows at stride 1 with kw = 2*pw + 1): output rows           \
     * [oh0, oh1) (fractions a0 / 4 and a1 / 4 of OH) of a kh x kw pool at stride sh, sw with     \
     * padding ph, pw and ceil_mode's windows give the bits of the rule; the others untouched. */ \
    static void check_vmax_sep_##T(const struct check_table *t, cvx_index H, cvx_index W,         \
                                   cvx_index kh, cvx_index kw, cvx_index sh, cvx_index sw,         \
                                   cvx_index ph, cvx_index pw, int ceil, int a0, int a1,           \
                                   int mode, int special)                                          \
    {                                                                                              \
        cvx_index OH = (H + 2 * ph - kh + (ceil ? sh - 1 : 0)) / sh + 1;                           \
        cvx_index OW = (W + 2 * pw - kw + (ceil ? sw - 1 : 0)) / sw + 1, q, oh0, oh1;              \
        T *x, *y;                                                                                  \
        if (H + 2 * ph < kh || W + 2 * pw < kw) return;                                            \
        if (ceil && (OH - 1) * sh >= H + ph) OH--; /* PyTorch's: the last window starts inside */ \
        if (ceil && (OW - 1) * sw >= W + pw) OW--;                                                 \
        oh0 = OH * a0 / 4, oh1 = OH * a1 / 4 > oh0 ? OH * a1 / 4 : oh0 + 1;                        \
        x = (T *)xmalloc(sizeof(T) * (size_t)(H * W));                                             \
        y = (T *)xmalloc(sizeof(T) * (size_t)(OH * OW));                                           \
        pool_special_##T(x, H, W, mode, special, 1);                                               \
        for (q = 0; q < OH * OW; q++) y[q] = (T)-7;                                                \
        t->pl_vmax_sep_##T(x, H, W, kh, kw, sh, sw, ph, pw, OW, oh0, oh1, y);                      \
        pool_rows_check_##T(t, #T " pl_vmax_sep", x, H, W, y, OH, OW, oh0, oh1, kh, kw, sh, sw,  \
                            ph, pw, special);                                                      \
        if (special == 0) { /* pl_vavg_sep on the same geometry (padding ph, pw on every side):    \
                             * each output's taps inside the plane added from 0 in row-major       \
                             * order (no NaN: one NaN's bits), divided by PyTorch's divisor: with   \
                             * count_include_pad (a0 odd) the window inside the padded plane, else  \
                             * inside the plane, or divisor_override 3 (a1 == 3) */                 \
            cvx_index oh, i, j, n_in, n_pad;                                                       \
            const int include = a0 % 2;                                                            \
            const cvx_index divisor = a1 == 3 ? 3 : 0;                                             \
            for (q = 0; q < OH * OW; q++) y[q] = (T)-7;                                            \
            t->pl_vavg_sep_##T(x, H, W, kh, kw, sh, sw, ph, pw, ph, pw, include, divisor, OW, oh0, \
                               oh1, y);                                                            \
            n_checks++;                                                                            \
            for (oh = 0; oh < OH; oh++)                                                            \
                for (q = 0; q < OW; q++) {                                                         \
                    T want = (T)-7;                                                                \
                    if (oh >= oh0 && oh < oh1) {                                                   \
                        want = 0, n_in = n_pad = 0;                                                \
                        for (i = sh * oh - ph; i < sh * oh - ph + kh; i++)                         \
                            for (j = sw * q - pw; j < sw * q - pw + kw; j++) {                     \
                                if (i < H + ph && j < W + pw) n_pad++;                             \
                                if (i >= 0 && i < H && j >= 0 && j < W)                            \
                                    want = want + x[i * W + j], n_in++;                            \
                            }                                                                      \
                        if (n_in == 0)                                                             \
                            want = 0;                                                              \
                        else                                                                       \
                            want = want / (T)(divisor ? divisor : include ? n_pad : n_in);         \
                    }                                                                              \
                    if (!SAME(y[oh * OW + q], want)) {                                             \
                        fail(t->name, #T " pl_vavg_sep", "H=%ld W=%ld k=%ld,%ld s=%ld,%ld "        \
                             "p=%ld,%ld rows %ld..%ld: oh=%ld q=%ld: %g want %g", (long)H,         \
                             (long)W, (long)kh, (long)kw, (long)sh, (long)sw, (long)ph, (long)pw,  \
                             (long)oh0, (long)oh1, (long)oh, (long)q, (double)y[oh * OW + q],      \
                             (double)want);                                                        \
                        oh = OH;                                                                   \
                        break;                                                                     \
                    }                                                                              \
                }                                                                                  \
        }                                                                                          \
        free(x), free(y);                                                                          \
    }
DEFINE_POOL_CHECK(float, same_bits_f)
DEFINE_POOL_CHECK(double, same_bits_d)

static void check_pool(const struct check_table *t)
{
    cvx_index k, s, p, d, W;
    for (k = 1; k <= 4; k++)
        for (s = 1; s <= 3; s++)
            for (p = 0; p <= k / 2; p++)
                for (d = 1; d <= 2; d++)
                    for (W = 5; W <= 150; W += 29) {
                        check_pool_float(t, 7, W, k, k, s, s, p, p, d, d, (int)(W % 2));
                        check_pool_double(t, 6, W + 1, k, k + (W % 2 && k < 4), s, s, p, p, d, d,
                                          (int)(1 - W % 2));
                    }
    check_pool_float(t, 5, 300, 3, 7, 2, 2, 1, 3, 1, 1, 0);
    check_pool_double(t, 5, 300, 2, 5, 1, 3, 0, 2, 1, 1, 1);
    for (k = 1; k <= 70; k += 3) {
        check_back2_float(t, k, 2 * k + k % 2);
        check_back2_double(t, k, 2 * k + 1 - k % 2);
    }
    for (k = 1; k <= 300; k += 37)
        for (s = 1; s <= 4; s++) {
            check_max3_rows_float(t, s, k, 2 * k + 1 + s % 2, (int)(s % 2), 2);
            check_max3_rows_double(t, s, k, 2 * k + 2 - s % 2, (int)(1 - s % 2), 2);
            check_max3_rows_float(t, s, k, k + 2 + s % 2, (int)(1 - s % 2), 1);
            check_max3_rows_double(t, s, k, k + 3 - s % 2, (int)(s % 2), 1);
        }
    /* widths across the 256-output runs of pl_vmax3s2, narrow planes, row ranges that start
     * and end inside the plane */
    for (W = 3; W <= 1100; W += W < 40 ? 1 : 97)
        for (p = 0; p <= 1; p++)
            for (s = 0; s <= 2; s++) {
                cvx_index H = 3 + (W + s) % 9, OH = (H + 2 * p - 3) / 2 + 1;
                check_vmax3s2_float(t, H, W, p, p, 0, OH, (int)(W % 2), (int)s);
                check_vmax3s2_double(t, H + 1, W, p, 1 - p, OH / 2, OH, (int)(1 - W % 2), (int)s);
                check_vmax3s2_float(t, H + 2, W + 1, 1 - p, p, 1, OH - 1 > 1 ? OH - 1 : 1, 1,
                                    (int)s);
            }
    /* pl_max3_lanes: strides 1 and 2, padding 0 and 1 each way, ceil_mode; widths across the
     * vectors and the 32-vector runs, one to a dozen rows, row ranges inside the plane */
    for (W = 1; W <= 1100; W += W < 40 ? 1 : 97)
        for (s = 0; s <= 2; s++) {
            const cvx_index H = 1 + (W + s) % 12, st = 1 + (W + s) % 2;
            const cvx_index ph = (W / 2 + s) % 2, pw = (W / 4 + s) % 2;
            check_max3_lanes_float(t, H, W, st, ph, pw, (int)(W % 3 == 0), 0, 4, (int)(W % 2),
                                   (int)s);
            check_max3_lanes_double(t, H + 1, W, 3 - st, pw, ph, (int)(W % 3 == 1), 1, 3,
                                    (int)(1 - W % 2), (int)s);
            check_max3_lanes_float(t, H + 2, W + 1, 3 - st, 1 - ph, 1 - pw, (int)(W % 3 == 2),
                                   2, 4, 1, (int)s);
        }
    /* pl_vmax2s2: narrow and wide planes, odd widths and heights with and without ceil_mode's
     * edge windows, row ranges that start and end inside the plane */
    for (W = 1; W <= 1100; W += W < 40 ? 1 : W < 520 ? 61 : 97)
        for (p = 0; p <= 1; p++)
            for (s = 0; s <= 2; s++) {
                const cvx_index H = 2 + (W + s) % 11, OH = (H + p) / 2;
                const cvx_index OW = (W + p) / 2 > 0 ? (W + p) / 2 : 1; /* W = 1: ceil_mode's */
                check_vmax2s2_float(t, H, W, OH, OW, 0, OH, (int)(W % 2), (int)s);
                check_vmax2s2_double(t, H + 1, W, (H + 1 + p) / 2, OW, OH / 2, (H + 1 + p) / 2,
                                     (int)(1 - W % 2), (int)s);
                check_vmax2s2_float(t, 2 * H, 2 * OW, H, OW, 1, H - 1 > 1 ? H - 1 : 1, 1, (int)s);
            }
    check_vmax2s2_float(t, 64, 32, 32, 16, 0, 32, 0, 1);
    for (p = 0; p <= 2; p++) { /* planes of one row or one column: edge windows only */
        check_vmax2s2_float(t, 1, 5, 1, 3, 0, 1, 0, (int)p);
        check_vmax2s2_double(t, 5, 1, 3, 1, 0, 3, 1, (int)p);
        check_vmax2s2_float(t, 1, 1, 1, 1, 0, 1, 1, (int)p);
        check_vmax2s2_double(t, 3, 4, 2, 2, 1, 2, 0, (int)p);
    }
    check_vmax2s2_double(t, 64, 32, 32, 16, 3, 29, 1, 1);
    { /* pl_vmax_sep: kernel, stride, padding, ceil_mode; narrow and wide planes (chunks of
       * 512 columns), tall narrow ones (several runs of rows at stride 1), row ranges that
       * start and end inside the plane */
        static const int g[][7] = {{3, 3, 1, 1, 1, 1, 0}, {5, 5, 1, 1, 2, 2, 0},
                                   {7, 3, 1, 1, 3, 1, 0}, {1, 1, 1, 1, 0, 0, 0},
                                   {2, 2, 1, 1, 0, 0, 0}, {3, 3, 3, 3, 1, 1, 1},
                                   {3, 5, 1, 2, 1, 2, 1}, {4, 2, 2, 1, 2, 1, 1},
                                   {3, 3, 2, 2, 1, 1, 0}, {2, 300, 1, 200, 1, 150, 1},
                                   {9, 9, 1, 1, 4, 4, 0}};
        size_t c;
        for (c = 0; c < sizeof g / sizeof g[0]; c++)
            for (W = 1; W <= 1100; W += W < 40 ? 1 : 97)
                for (s = 0; s <= 2; s++) {
                    const cvx_index H = 1 + (W + s) % 13;
                    check_vmax_sep_float(t, H, W, g[c][0], g[c][1], g[c][2], g[c][3], g[c][4],
                                         g[c][5], g[c][6], 0, 4, (int)(W % 2), (int)s);
                    check_vmax_sep_double(t, H + 1, W, g[c][0], g[c][1], g[c][2], g[c][3],
                                          g[c][4], g[c][5], g[c][6], 1, 3, (int)(1 - W % 2),
                                          (int)s);
                    if (W < 40)
                        check_vmax_sep_float(t, 150, W, g[c][0], g[c][1], g[c][2], g[c][3],
                                             g[c][4], g[c][5], g[c][6], (int)s, 4, 1, (int)s);
                }
    }
}

int main(int argc, char **argv)
{
    const struct check_table *tables[CHECK_MAX_TABLES];
    int nt = check_tables(tables), i, ran = 0;
    const char *only = argc > 1 ? argv[1] : NULL;
    for (i = 0; i < nt; i++) {
        long f0 = n_fail, c0 = n_checks;
        if (only && strcmp(only, tables[i]->name) != 0) continue;
        if (!tables[i]->available) {
            printf("%-8s skipped: this CPU lacks it\n", tables[i]->name);
            continue;
        }
        check_gemm(tables[i]);
        check_gemm_nt(tables[i]);
        check_direct(tables[i]);
        check_vec(tables[i]);
        check_dw(tables[i]);
        check_pool(tables[i]);
        ran++;
        printf("%-8s %ld checks, %ld failed%s\n", tables[i]->name, n_checks - c0, n_fail - f0,
               tables[i]->fma_order ? " (with the fma-order replay)" : "");
    }
    if (!ran) {
        printf("no kernel table ran\n");
        return 1;
    }
    printf("%s: %ld checks, %ld failed\n", n_fail ? "FAILED" : "OK", n_checks, n_fail);
    return n_fail ? 1 : 0;
}
